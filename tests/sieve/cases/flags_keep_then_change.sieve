require ["imap4flags", "fileinto"];
setflag "a"; keep; setflag "b";
