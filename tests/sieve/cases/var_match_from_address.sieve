require ["variables", "fileinto"];
if address :matches :localpart "from" "*" { fileinto "user.${1}"; }
