require ["regex", "variables", "fileinto"]; if header :regex "subject" "^([A-Za-z]+) ([a-z]+)" { fileinto "${2}-${1}"; }
