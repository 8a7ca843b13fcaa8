require ["body", "fileinto"];
if body :text :contains "room 4" { fileinto "R"; }
