# message: encoded.eml
if header :is "x-encoded" "café au lait" { discard; }
