require "vacation";
vacation :seconds 100 "away";
