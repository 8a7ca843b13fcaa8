if envelope "from" "x" { discard; }
