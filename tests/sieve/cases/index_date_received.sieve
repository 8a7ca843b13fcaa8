# postern-only: date :index 2 takes the second Received (RFC 5260 §6); Pigeonhole 0.5 gives the first
# expect: Performed actions:
# expect: * store message in folder: 10:59:50
# expect: Implicit keep:
# expect: (none)
require ["index", "date", "fileinto", "variables"];
if date :index 2 :zone "+0000" :matches "received" "time" "*" { fileinto "${1}"; }
