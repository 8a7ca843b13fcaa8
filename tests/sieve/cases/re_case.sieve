require ["regex", "fileinto"];
if header :regex "subject" "^meeting" { fileinto "y"; }
