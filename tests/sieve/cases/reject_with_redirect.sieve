require "reject"; redirect "a@example.com"; reject "no";
