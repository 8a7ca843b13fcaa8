require ["variables", "fileinto"];
set "Folder" "X"; fileinto "${FOLDER}";
