if true { if true { if not false { redirect "deep@example.com"; } } }
