require ["variables", "fileinto"];
set :length "a" ""; fileinto "n${a}";
