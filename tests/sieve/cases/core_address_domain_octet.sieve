if address :domain :is :comparator "i;octet" "cc" "example.com" { discard; }
