require ["variables", "fileinto"];
if header :matches "subject" "*" { fileinto "x${01}y"; }
