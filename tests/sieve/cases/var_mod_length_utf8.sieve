require ["variables", "fileinto"];
set :length "a" "Grüße"; fileinto "${a}";
