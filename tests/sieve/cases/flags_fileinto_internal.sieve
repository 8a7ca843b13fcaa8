require ["imap4flags", "fileinto"];
setflag "work"; fileinto "A";
