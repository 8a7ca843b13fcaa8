require ["variables", "relational", "comparator-i;ascii-numeric", "fileinto"]; if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "${b}"] "0" { fileinto "zero"; }
