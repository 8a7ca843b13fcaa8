require "copy"; redirect :copy "archive@example.com"; redirect :copy "boss@example.com";
