require ["index", "date", "fileinto", "variables"];
if address :index 1 :is "to" "bob@example.com" { fileinto "y"; }
