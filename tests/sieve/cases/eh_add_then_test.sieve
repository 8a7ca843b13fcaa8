require ["editheader", "fileinto"];
addheader "X-Sieve" "yes"; if header :is "x-sieve" "yes" { fileinto "added"; }
