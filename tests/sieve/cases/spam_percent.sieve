# message: list.eml
require ["spamtestplus", "relational", "comparator-i;ascii-numeric", "fileinto"]; if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "80" { fileinto "Junk"; }
