# message: list.eml
require ["regex", "variables", "fileinto"]; set "w" "[a-z]+"; if header :regex "subject" "^\\[(${w})-" { fileinto "${1}"; }
