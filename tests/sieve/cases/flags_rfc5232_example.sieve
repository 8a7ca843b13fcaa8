require ["imap4flags", "fileinto"];
if header :contains "from" "alice" {
    setflag "\\Flagged";
    fileinto "Friends";
    removeflag "\\Flagged";
}
