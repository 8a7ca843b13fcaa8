require ["variables", "fileinto"];
set :length "a" "hello"; fileinto "${a}";
