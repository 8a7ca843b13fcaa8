include "lib_file";
