if header :matches "subject" "*t*t*t*t*t*" { discard; }
