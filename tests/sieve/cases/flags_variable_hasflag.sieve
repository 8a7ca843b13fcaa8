require ["imap4flags", "variables", "fileinto"]; set "f" "red blue"; if hasflag "f" "blue" { fileinto "blue"; }
