if exists ["From", "Date"] { discard; }
