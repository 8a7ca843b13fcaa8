require ["encoded-character", "fileinto"]; fileinto "${hex:zz}";
