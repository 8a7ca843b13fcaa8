if size :under 100 { discard; }
