require ["encoded-character", "fileinto"]; fileinto "${unicode:46 6f 6f}";
