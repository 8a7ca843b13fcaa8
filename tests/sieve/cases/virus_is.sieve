# message: auto.eml
require ["virustest", "fileinto"]; if virustest :is "5" { fileinto "Virus"; }
