# message: encoded.eml
if address :is "from" "juergen@example.de" { discard; }
