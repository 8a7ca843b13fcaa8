require "envelope"; if envelope :is "to" "RECIPIENT@EXAMPLE.COM" { discard; }
