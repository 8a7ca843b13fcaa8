require "imap4flags"; addflag "\\Seen"; stop;
