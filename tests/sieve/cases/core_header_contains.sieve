if header :contains "subject" "tomorrow" { discard; }
