require ["date", "relational", "fileinto"];
if date :is "date" "month" "12" { fileinto "y"; }
