# message: addresses.eml
if address :is "cc" "eve@example.com" { discard; }
