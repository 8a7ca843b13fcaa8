require ["editheader", "fileinto", "index"]; deleteheader :index 1 :last "x-multi"; if header :index 1 :last :is "x-multi" "second" { fileinto "ok"; }
