require ["variables", "fileinto"];
set :lower "a" "MiXeD"; fileinto "${a}";
