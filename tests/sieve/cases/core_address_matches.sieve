if address :matches :domain "from" "*.org" { discard; }
