require "relational"; if header :count "gt" "x-multi" "10" { discard; }
