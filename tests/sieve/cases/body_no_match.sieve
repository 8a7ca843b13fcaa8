require ["body", "fileinto"];
if body :contains "banana" { fileinto "R"; }
