require ["variables", "fileinto"];
set "a" "b"; fileinto "${${a}}";
