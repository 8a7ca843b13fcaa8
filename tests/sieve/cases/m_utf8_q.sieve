# message: encoded.eml
if header :matches "subject" "Gr??e aus*" { discard; }
