if header :matches "subject" "meeting*PROJECT" { discard; }
