if false { discard; } elsif true { redirect "a@example.com"; } else { redirect "b@example.com"; }
