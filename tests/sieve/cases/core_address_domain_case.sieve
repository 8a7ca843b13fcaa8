if address :domain :is "cc" "example.com" { discard; }
