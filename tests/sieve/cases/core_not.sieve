if not false { discard; }
