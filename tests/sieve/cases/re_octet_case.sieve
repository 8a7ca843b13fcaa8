require ["regex", "fileinto"];
if header :regex :comparator "i;octet" "subject" "^meeting" { fileinto "y"; }
