# message: encoded.eml
if header :contains "subject" "München" { discard; }
