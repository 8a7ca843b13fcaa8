require ["variables", "fileinto"];
set :upperfirst "a" "mixed"; fileinto "${a}";
