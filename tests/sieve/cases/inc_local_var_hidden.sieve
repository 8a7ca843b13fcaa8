require ["include", "variables", "fileinto"]; set "folder" "Hidden"; include "lib_uses_local";
