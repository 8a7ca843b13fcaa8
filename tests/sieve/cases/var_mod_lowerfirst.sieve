require ["variables", "fileinto"];
set :lowerfirst "a" "MIXED"; fileinto "${a}";
