require ["imap4flags", "fileinto"];
setflag "x"; keep :flags "y";
