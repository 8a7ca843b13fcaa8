require "variables"; if string :contains ["abc", "def"] "e" { discard; }
