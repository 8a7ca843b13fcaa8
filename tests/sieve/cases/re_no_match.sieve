require ["regex", "fileinto"];
if header :regex "subject" "^[0-9]+$" { fileinto "y"; }
