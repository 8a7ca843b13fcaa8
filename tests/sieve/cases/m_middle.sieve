if header :matches "subject" "*tomorrow*" { discard; }
