if exists "X-Empty" { discard; }
