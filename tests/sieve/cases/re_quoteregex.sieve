# postern-only: :quoteregex (RFC 5229 §4.1 via the regex draft §4) is not in Pigeonhole 0.5
# expect: Performed actions:
# expect: * store message in folder: y
# expect: Implicit keep:
# expect: (none)
# message: list.eml
require ["regex", "variables", "fileinto"]; set :quoteregex "a" "1.0"; if header :regex "subject" "${a}" { fileinto "y"; }
