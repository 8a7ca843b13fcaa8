require ["variables", "fileinto"];
set "folder" "Work"; fileinto "${folder}";
