require ["variables", "fileinto"];
fileinto "x${folder}y";
