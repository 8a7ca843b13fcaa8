# message: addresses.eml
require ["variables", "fileinto"]; if address :matches :all "cc" "*@*" { fileinto "${1}.${2}"; }
