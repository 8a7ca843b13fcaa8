# message: encoded.eml
if header :contains "to" "André" { discard; }
