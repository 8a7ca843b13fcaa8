require ["date", "variables", "fileinto"]; if date :zone "+0000" :matches "received" "time" "*" { fileinto "${1}"; }
