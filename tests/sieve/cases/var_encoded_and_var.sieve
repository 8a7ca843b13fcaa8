require ["variables", "encoded-character", "fileinto"]; set "a" "b"; fileinto "${hex:24}{a}";
