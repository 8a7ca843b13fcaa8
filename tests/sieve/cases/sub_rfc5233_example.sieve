# to: ken+mta-filters@example.org
require ["subaddress", "fileinto"];
if envelope :detail "to" "mta-filters" { fileinto "inbox.ietf-mta-filters"; }
