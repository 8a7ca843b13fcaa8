require ["index", "date", "fileinto", "variables"];
if header :index 1 :matches "received" "from *" { fileinto "${1}"; }
