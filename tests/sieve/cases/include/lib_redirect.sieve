redirect "once@example.com";
