require "include"; include "lib_file";
