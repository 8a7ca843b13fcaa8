require ["relational", "fileinto"]; if header :count "ge" "received" "10" { fileinto "a"; } else { fileinto "b"; }
