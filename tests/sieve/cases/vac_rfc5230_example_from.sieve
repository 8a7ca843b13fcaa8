require "vacation";
vacation :days 7 :from "hemingway@example.com" "Gone fishin'.";
