require ["date", "variables", "fileinto"]; if date :originalzone :matches "date" "std11" "*" { fileinto "${1}"; }
