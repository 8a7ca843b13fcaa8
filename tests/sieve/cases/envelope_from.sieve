require "envelope"; if envelope :is "from" "sender@example.org" { discard; }
