# to: ken+x@example.org
require ["subaddress", "envelope"]; if envelope :user "to" "ken" { discard; }
