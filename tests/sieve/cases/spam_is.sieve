# message: list.eml
require ["spamtest", "fileinto"]; if spamtest :is "8" { fileinto "eight"; }
