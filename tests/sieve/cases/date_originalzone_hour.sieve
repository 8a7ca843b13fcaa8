require ["date", "relational", "fileinto"];
if date :originalzone :is "date" "hour" "12" { fileinto "y"; }
