# message: html.eml
require ["body", "fileinto"]; if body :text :contains "Hello World" { fileinto "text"; } elsif body :text :contains "<b>" { fileinto "raw-html"; }
