if anyof(allof(true, not false), anyof(false, false)) { discard; }
