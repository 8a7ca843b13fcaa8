require ["imap4flags", "fileinto"];
addflag "flagvar" "\\Deleted";
