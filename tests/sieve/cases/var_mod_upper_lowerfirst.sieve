require ["variables", "fileinto"];
set :upper :lowerfirst "a" "mixed"; fileinto "${a}";
