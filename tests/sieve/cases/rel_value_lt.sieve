require ["relational", "comparator-i;ascii-numeric"];
if header :value "lt" :comparator "i;ascii-numeric" "x-number" "40" { discard; }
