require ["imap4flags", "fileinto"];
setflag "important work"; if hasflag :contains "work" { fileinto "yes"; }
