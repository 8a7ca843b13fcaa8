require ["imap4flags", "fileinto"];
setflag "\\Seen \\Flagged"; removeflag "\\Seen"; keep;
