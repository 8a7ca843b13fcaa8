require ["body", "fileinto"];
if body :matches "*room 4*" { fileinto "R"; }
