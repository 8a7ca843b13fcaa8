require ["variables", "fileinto"];
fileinto "${1a}";
