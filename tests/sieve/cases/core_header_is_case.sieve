if header :is "SUBJECT" "meeting TOMORROW about the project" { discard; }
