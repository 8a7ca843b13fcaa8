require ["relational", "comparator-i;ascii-numeric"];
if header :is :comparator "i;ascii-numeric" "x-number" "0042" { discard; }
