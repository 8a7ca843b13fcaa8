require ["editheader", "fileinto"];
deleteheader "x-multi"; if not exists "x-multi" { fileinto "gone"; }
