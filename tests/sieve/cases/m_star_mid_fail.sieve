if header :matches "subject" "Meeting*xyz" { discard; }
