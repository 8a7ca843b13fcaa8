require ["subaddress", "fileinto"];
if address :detail "from" "" { discard; }
