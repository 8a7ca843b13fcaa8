require ["imap4flags", "fileinto"];
setflag "a A a"; addflag "a"; keep;
