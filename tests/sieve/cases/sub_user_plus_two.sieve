# message: addresses.eml
require ["subaddress", "fileinto"];
if address :user "bcc" "peggy" { discard; }
