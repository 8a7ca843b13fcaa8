require ["variables", "fileinto"];
if header :matches "subject" "*e*" { fileinto "${1}|${2}"; }
