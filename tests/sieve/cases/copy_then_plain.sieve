require "copy"; redirect :copy "a@example.com"; redirect "b@example.com";
