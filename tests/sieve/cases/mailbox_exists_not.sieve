require ["mailbox", "fileinto"]; if mailboxexists "Nope" { fileinto "yes"; } else { fileinto "no"; }
