if address :is "subject" "x" { discard; }
