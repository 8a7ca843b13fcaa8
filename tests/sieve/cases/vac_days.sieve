require "vacation";
vacation :days 3 "I am away";
