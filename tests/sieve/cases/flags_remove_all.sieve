require ["imap4flags", "fileinto"];
setflag "a"; removeflag "a"; keep;
