# message: encoded.eml
require ["body", "fileinto"];
if body :raw :contains "Sch=C3=B6ne" { fileinto "R"; }
