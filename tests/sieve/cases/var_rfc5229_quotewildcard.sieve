require ["variables", "fileinto"];
set :quotewildcard "b" "Rock*";
if header :matches "subject" "${b}" { discard; } else { fileinto "nomatch"; }
