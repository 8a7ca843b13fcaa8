redirect :copy "bob@example.com";
