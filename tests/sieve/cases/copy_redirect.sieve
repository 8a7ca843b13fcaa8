require "copy"; redirect :copy "bob@example.com";
