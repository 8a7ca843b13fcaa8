require "envelope"; if envelope :is "to" "recipient@example.com" { discard; }
