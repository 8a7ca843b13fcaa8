if header :matches :comparator "i;octet" "subject" "meeting*" { discard; }
