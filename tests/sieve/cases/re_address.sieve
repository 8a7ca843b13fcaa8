require ["regex", "fileinto"];
if address :regex :domain "from" "^example\\.(org|net)$" { fileinto "y"; }
