# message: addresses.eml
if address :domain "resent-from" "example.net" { discard; }
