if spamtest "1" { discard; }
