require ["variables", "fileinto"];
set :upper "a" "MiXeD"; fileinto "${a}";
