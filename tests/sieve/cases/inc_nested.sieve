require "include"; include "lib_nested";
