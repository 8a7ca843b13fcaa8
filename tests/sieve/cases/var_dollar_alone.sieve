require ["variables", "fileinto"];
fileinto "$x${";
