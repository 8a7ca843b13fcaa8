if address :contains ["to","cc"] "carol" { discard; }
