if header :contains "received" "mail.example.com with ESMTPS" { discard; }
