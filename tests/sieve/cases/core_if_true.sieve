if true { discard; }
