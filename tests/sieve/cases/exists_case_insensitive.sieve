if exists "MESSAGE-ID" { discard; }
