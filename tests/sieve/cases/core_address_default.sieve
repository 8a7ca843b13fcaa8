if address "from" "alice@example.org" { discard; }
