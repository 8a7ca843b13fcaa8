require "envelope"; if envelope :localpart :is "to" "recipient" { discard; }
