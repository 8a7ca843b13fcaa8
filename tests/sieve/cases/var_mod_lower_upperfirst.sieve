require ["variables", "fileinto"];
set :lower :upperfirst "a" "MIXED case"; fileinto "${a}";
