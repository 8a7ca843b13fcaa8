require ["variables", "fileinto"];
set "k" "Meet*"; if header :matches "subject" "${k}" { discard; }
