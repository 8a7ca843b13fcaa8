# message: addresses.eml
if address :localpart :is "from" "john.smith+newsletter" { discard; }
