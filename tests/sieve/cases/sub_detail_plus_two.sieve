# message: addresses.eml
require ["subaddress", "variables", "fileinto"]; if address :detail :matches "bcc" "*" { fileinto "${1}"; }
