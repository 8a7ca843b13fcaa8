if exists ["From", "X-Nope"] { discard; }
