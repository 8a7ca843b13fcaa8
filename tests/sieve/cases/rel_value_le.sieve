require ["relational", "comparator-i;ascii-numeric"];
if header :value "le" :comparator "i;ascii-numeric" "x-number" "42" { discard; }
