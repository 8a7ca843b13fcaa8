# message: encoded.eml
require ["body", "fileinto"];
if body :contains "Schöne Grüße" { fileinto "R"; }
