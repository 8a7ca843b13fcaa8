require ["index", "date", "fileinto", "variables"];
if header :index 1 :last :matches "received" "from *" { fileinto "${1}"; }
