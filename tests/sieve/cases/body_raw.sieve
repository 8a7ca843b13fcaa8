# message: multipart.eml
require ["body", "fileinto"];
if body :raw :contains "Caf=E9" { fileinto "R"; }
