require "relational"; if header :value "gt" "subject" "L" { discard; }
