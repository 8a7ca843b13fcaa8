require ["variables", "fileinto"];
set "a" "1"; set "a" "2"; fileinto "${a}";
