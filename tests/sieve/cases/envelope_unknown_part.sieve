require "envelope"; if envelope :is "nope" "x" { discard; }
