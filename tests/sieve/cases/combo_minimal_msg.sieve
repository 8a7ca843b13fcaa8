# message: minimal.eml
if header :is "subject" "minimal" { discard; }
