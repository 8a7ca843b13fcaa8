require ["include", "variables", "fileinto"]; global "folder"; set "folder" "Shared"; include "lib_uses_global";
