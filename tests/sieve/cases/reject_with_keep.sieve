require "reject"; keep; reject "no";
