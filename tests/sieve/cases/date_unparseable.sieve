require ["date", "relational", "fileinto"];
if date :is "subject" "year" "2026" { fileinto "y"; }
