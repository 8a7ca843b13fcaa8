redirect "a@example.com"; redirect "b@example.com"; redirect "c@example.com"; redirect "d@example.com"; redirect "e@example.com";
