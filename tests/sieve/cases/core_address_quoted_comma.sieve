if address :is "cc" "dave@example.com" { discard; }
