require "vacation";
vacation :handle "h1" "I am away";
