require ["editheader", "fileinto", "index"]; addheader "X-Multi" "zeroth"; if header :index 1 :is "x-multi" "zeroth" { fileinto "first"; }
