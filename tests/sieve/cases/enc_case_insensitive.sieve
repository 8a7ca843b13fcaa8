require ["encoded-character", "fileinto"]; fileinto "${HEX:42}";
