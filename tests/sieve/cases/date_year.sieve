require ["date", "relational", "fileinto"];
if date :is "date" "year" "2026" { fileinto "y"; }
