require ["variables", "fileinto"];
fileinto "a${nope}b";
