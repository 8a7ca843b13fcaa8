if allof (true, header :contains "subject" "project") { discard; }
