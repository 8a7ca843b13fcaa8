require ["variables", "fileinto"];
if header :matches "subject" "Meeting*" { fileinto "${0}"; }
