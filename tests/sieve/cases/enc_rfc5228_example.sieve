require ["encoded-character", "fileinto"]; fileinto "$${hex:40}";
