require ["fileinto", "imap4flags", "variables"]; set "f" "\\Seen"; fileinto :flags "${f} x" "A";
