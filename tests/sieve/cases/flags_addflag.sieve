require ["imap4flags", "fileinto"];
addflag "\\Seen"; addflag ["\\Flagged", "work"]; keep;
