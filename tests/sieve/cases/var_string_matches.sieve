require ["variables", "fileinto"];
set "s" "2026-12-07"; if string :matches "${s}" "*-*-*" { fileinto "${3}.${2}.${1}"; }
