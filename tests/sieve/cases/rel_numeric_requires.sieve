if header :is :comparator "i;ascii-numeric" "x-number" "42" { discard; }
