require ["duplicate", "fileinto", "mailbox"];
if duplicate { fileinto :create "Trash/Duplicate"; }
