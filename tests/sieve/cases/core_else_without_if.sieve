else { discard; }
