require ["body", "fileinto"];
if body :raw :contains "MAKE MONEY FAST" { discard; }
