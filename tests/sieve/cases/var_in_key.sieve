require ["variables", "fileinto"];
set "k" "tomorrow"; if header :contains "subject" "${k}" { discard; }
