require ["include", "fileinto"]; include "lib_stop"; fileinto "after";
