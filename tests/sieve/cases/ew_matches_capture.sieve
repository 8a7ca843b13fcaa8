# message: encoded.eml
require ["variables", "fileinto"]; if header :matches "subject" "Grüße aus *" { fileinto "${1}"; }
