require ["date", "relational", "fileinto"];
if date :zone "+0900" :is "date" "time" "20:34:56" { fileinto "y"; }
