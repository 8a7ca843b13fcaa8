redirect "bob@example.com"; redirect "bob@example.com";
