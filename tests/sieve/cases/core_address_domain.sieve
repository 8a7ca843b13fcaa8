if address :domain :is "to" "example.net" { discard; }
