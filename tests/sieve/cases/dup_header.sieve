require "duplicate"; if duplicate :header "subject" { discard; }
