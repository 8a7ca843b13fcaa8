if address :user "from" "alice" { discard; }
