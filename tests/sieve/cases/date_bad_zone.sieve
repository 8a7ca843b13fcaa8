require ["date", "relational", "fileinto"];
if date :zone "0100" :is "date" "year" "2026" { fileinto "y"; }
