# message: addresses.eml
require ["date", "variables", "fileinto"]; if date :zone "+0000" :matches "date" "time" "*" { fileinto "${1}"; }
