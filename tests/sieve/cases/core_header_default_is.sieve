if header "x-priority" "1" { discard; }
