# message: html.eml
require ["body", "fileinto"]; if body :content "text/html" :contains "<b>World</b>" { fileinto "yes"; }
