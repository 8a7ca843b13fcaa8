require ["variables", "fileinto"];
set :length :quotewildcard "a" "a*b"; fileinto "${a}";
