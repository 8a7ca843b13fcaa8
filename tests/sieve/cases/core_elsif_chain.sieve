if false { discard; } elsif false { redirect "a@example.com"; } elsif header :contains "subject" "meeting" { redirect "m@example.com"; } else { keep; }
