if header :matches "subject" "*e*e*e*e*" { discard; }
