if header :matches "subject" "*project" { discard; }
