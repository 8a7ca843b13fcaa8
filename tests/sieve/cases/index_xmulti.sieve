require ["index", "date", "fileinto", "variables"];
if header :index 2 :is "x-multi" "second" { fileinto "y"; }
