if size :over 10K { discard; } else { redirect "bart@example.com"; }
