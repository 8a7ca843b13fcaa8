require ["regex", "fileinto"];
if header :regex "subject" "^Meeting.*project$" { fileinto "y"; }
