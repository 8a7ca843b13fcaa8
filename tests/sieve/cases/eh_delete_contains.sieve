require ["editheader", "fileinto"];
deleteheader :contains "x-mailer" "Mailer"; if not exists "x-mailer" { fileinto "ok"; }
