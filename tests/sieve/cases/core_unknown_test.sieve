if headr "subject" "x" { discard; }
