if header "subject" "abc { discard; }
