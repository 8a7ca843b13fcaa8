# message: addresses.eml
if address :is "cc" "mallory@example.com" { discard; }
