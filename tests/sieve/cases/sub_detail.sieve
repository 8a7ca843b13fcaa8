require ["subaddress", "fileinto"];
if address :detail "sender" "lists" { discard; }
