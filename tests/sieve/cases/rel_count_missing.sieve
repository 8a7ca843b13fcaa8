require ["relational", "comparator-i;ascii-numeric"];
if header :count "eq" :comparator "i;ascii-numeric" "x-nope" "0" { discard; }
