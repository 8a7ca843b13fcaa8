require ["index", "date", "fileinto", "variables"];
if header :index 5 :contains "received" "" { fileinto "y"; }
