require ["date", "relational", "fileinto"];
if date :zone "+0000" :is "date" "hour" "11" { fileinto "y"; }
