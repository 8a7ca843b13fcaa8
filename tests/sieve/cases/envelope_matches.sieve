require "envelope"; if envelope :matches "to" "*@example.com" { discard; }
