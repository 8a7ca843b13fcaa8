require ["editheader", "fileinto"];
deleteheader "x-multi" "second"; if header :is "x-multi" "second" { fileinto "still"; } elsif header :is "x-multi" "third" { fileinto "ok"; }
