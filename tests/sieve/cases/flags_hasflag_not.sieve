require ["imap4flags", "fileinto"];
if hasflag "\\Seen" { fileinto "yes"; }
