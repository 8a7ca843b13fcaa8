require ["date", "relational", "fileinto"];
if date :is "date" "day" "07" { fileinto "y"; }
