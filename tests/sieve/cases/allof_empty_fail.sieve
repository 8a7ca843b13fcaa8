if allof() { discard; }
