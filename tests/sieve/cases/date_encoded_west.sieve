# message: encoded.eml
require ["date", "variables", "fileinto"]; if date :zone "+0000" :matches "date" "iso8601" "*" { fileinto "${1}"; }
