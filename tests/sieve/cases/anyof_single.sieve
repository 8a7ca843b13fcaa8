if anyof(true) { discard; }
