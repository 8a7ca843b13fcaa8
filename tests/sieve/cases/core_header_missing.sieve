if header :contains "x-nope" "" { discard; }
