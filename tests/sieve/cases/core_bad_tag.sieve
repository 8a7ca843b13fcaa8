if header :foo "subject" "x" { discard; }
