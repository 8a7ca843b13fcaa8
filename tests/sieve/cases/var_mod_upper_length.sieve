require ["variables", "fileinto"];
set :length :upper "a" "abc"; fileinto "${a}";
