# message: list.eml
if header :matches "subject" "[*] *" { discard; }
