require ["date", "relational", "fileinto"];
if date :zone "+0000" :is "date" "julian" "61381" { fileinto "y"; }
