require ["index", "date", "fileinto", "variables"];
if header :last :is "x-multi" "third" { fileinto "y"; }
