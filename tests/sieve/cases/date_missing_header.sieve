require ["date", "relational", "fileinto"];
if date :is "x-nope" "year" "2026" { fileinto "y"; }
