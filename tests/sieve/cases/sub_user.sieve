require ["subaddress", "fileinto"];
if address :user "sender" "alice" { discard; }
