require "vacation";
vacation :days 400 "I am away";
