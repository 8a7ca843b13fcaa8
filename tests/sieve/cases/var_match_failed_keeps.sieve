require ["variables", "fileinto"];
if header :matches "subject" "M*" { set "a" "1"; } if header :matches "subject" "zzz*" { set "a" "2"; } fileinto "${1}";
