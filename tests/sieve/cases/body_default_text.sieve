require ["body", "fileinto"];
if body :contains "room 4" { fileinto "R"; }
