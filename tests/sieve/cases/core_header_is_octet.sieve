if header :is :comparator "i;octet" "subject" "meeting tomorrow about the project" { discard; }
