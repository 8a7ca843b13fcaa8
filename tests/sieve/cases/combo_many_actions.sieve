require ["fileinto", "imap4flags", "copy"];
fileinto :flags "\\Seen" "A"; fileinto :copy "B"; redirect :copy "c@example.com"; keep :flags "\\Flagged";
