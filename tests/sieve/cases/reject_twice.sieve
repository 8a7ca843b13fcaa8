require "reject"; reject "no"; reject "no again";
