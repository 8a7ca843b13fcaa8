require ["editheader", "fileinto"];
addheader "X Bad" "v";
