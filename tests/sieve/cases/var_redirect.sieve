require ["variables", "fileinto"];
set "to" "bob"; redirect "${to}@example.com";
