require ["editheader", "fileinto", "index"]; addheader :last "X-Multi" "fourth"; if header :index 1 :last :is "x-multi" "fourth" { fileinto "last"; }
