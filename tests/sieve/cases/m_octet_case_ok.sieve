if header :matches :comparator "i;octet" "subject" "Meeting*" { discard; }
