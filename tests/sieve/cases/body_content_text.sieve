# message: multipart.eml
require ["body", "fileinto"];
if body :content "text" :contains "secret format" { fileinto "R"; }
