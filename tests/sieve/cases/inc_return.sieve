require ["include", "fileinto"]; include "lib_return"; fileinto "after";
