require ["reject", "variables"]; if header :matches "subject" "*" { reject "Not about ${1}"; }
