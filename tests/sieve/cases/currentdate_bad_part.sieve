require ["date", "relational", "fileinto"];
if currentdate :is "nope" "1" { fileinto "y"; }
