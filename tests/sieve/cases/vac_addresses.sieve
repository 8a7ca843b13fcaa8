require "vacation";
vacation :addresses ["bob@example.com", "b@example.com"] "I am away";
