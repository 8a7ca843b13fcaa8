# message: multipart.eml
require ["body", "fileinto"];
if body :content "text/plain" :contains "revenue" { fileinto "R"; }
