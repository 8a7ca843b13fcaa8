require ["imap4flags", "fileinto"];
setflag "\\Seen"; if hasflag "\\seen" { fileinto "yes"; }
