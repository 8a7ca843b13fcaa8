# message: encoded.eml
if header :is "subject" "Grüße aus München und Paris" { discard; }
