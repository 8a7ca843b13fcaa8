if header :contains ["to", "cc"] ["nobody", "Boss"] { discard; }
