require ["date", "relational", "fileinto"];
if date :is "date" "fortnight" "1" { fileinto "y"; }
