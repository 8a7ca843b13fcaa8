require ["date", "relational", "fileinto"];
if date :zone "-1200" :is "date" "date" "2026-12-06" { fileinto "y"; }
