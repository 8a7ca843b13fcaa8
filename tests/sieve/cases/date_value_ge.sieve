require ["date", "relational", "fileinto"];
if date :value "ge" :originalzone "date" "date" "2026-12-01" { fileinto "y"; }
