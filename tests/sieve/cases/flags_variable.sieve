require ["imap4flags", "variables", "fileinto"]; setflag "f" "x y"; addflag "f" "z"; fileinto :flags "${f}" "A";
