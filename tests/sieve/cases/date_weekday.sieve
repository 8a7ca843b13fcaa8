require ["date", "relational", "fileinto"];
if date :originalzone :is "date" "weekday" "1" { fileinto "y"; }
