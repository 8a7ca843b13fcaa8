if header :is "x-empty" "" { discard; }
