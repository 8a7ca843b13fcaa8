require ["variables", "fileinto"];
set "h" "subject"; if header :contains "${h}" "project" { discard; }
