# message: minimal.eml
if address :domain "to" "example.com" { discard; }
