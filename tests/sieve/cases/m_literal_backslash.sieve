if header :matches "subject" "Meeting tomorrow\\\\*" { discard; }
