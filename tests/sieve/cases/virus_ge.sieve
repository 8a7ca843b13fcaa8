# message: list.eml
require ["virustest", "relational", "comparator-i;ascii-numeric", "fileinto"]; if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; }
