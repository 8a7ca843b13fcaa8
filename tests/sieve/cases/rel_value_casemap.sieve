require "relational"; if header :value "eq" "subject" "MEETING TOMORROW ABOUT THE PROJECT" { discard; }
