require ["date", "relational", "fileinto"];
if currentdate :zone "+0000" :value "ge" "date" "2020-01-01" { fileinto "y"; }
