if false { discard; } else { redirect "x@example.com"; }
