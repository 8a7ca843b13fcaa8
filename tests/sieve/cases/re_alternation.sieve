require ["regex", "fileinto"];
if header :regex "subject" "(foo|tomorrow)" { fileinto "y"; }
