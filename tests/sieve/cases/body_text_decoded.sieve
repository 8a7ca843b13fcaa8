# message: multipart.eml
require ["body", "fileinto"];
if body :text :contains "Café budget" { fileinto "R"; }
