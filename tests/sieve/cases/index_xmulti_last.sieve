require ["index", "date", "fileinto", "variables"];
if header :index 1 :last :is "x-multi" "third" { fileinto "y"; }
