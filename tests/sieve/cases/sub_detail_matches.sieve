# message: multipart.eml
require ["subaddress", "variables", "fileinto"]; if address :detail :matches "to" "*" { fileinto "${1}"; }
