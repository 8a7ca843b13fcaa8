if header :matches "subject" "*banana*" { discard; }
