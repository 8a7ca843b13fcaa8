require "relational"; if header :value "lt" "subject" "L" { discard; }
