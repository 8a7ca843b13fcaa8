require ["editheader", "fileinto"];
deleteheader :matches "x-multi" "*d"; if header :is "x-multi" "first" { if not header :is "x-multi" ["second", "third"] { fileinto "ok"; } }
