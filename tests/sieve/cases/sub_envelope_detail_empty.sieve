# to: ken+@example.org
require ["subaddress", "envelope"]; if envelope :detail "to" "" { discard; }
