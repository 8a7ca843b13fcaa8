# message: addresses.eml
if address :is "cc" "trent@example.com" { discard; }
