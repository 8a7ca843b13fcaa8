require ["date", "variables", "fileinto"]; if date :originalzone :matches "date" "minute" "*" { if date :originalzone :matches "date" "second" "*" { fileinto "m${1}s"; } }
