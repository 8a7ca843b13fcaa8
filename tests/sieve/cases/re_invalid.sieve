require ["regex", "fileinto"];
if header :regex "subject" "(unclosed" { fileinto "y"; }
