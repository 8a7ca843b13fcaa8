require ["editheader", "index", "fileinto"]; deleteheader :index 2 :is "x-multi" "first"; if header :is "x-multi" "second" { fileinto "second-kept"; }
