require ["variables", "include", "fileinto"];
global "folder";
fileinto "${folder}";
