# message: multipart.eml
require ["body", "fileinto"];
if body :content "image" :contains "" { fileinto "R"; }
