require ["variables", "fileinto"];
set :quotewildcard "a" "a*b?c\\d"; fileinto "${a}";
