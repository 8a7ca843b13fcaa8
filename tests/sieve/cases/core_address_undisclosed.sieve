# message: addresses.eml
if address :contains "to" "@" { discard; }
