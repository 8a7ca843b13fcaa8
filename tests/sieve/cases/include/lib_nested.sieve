require "include";
include "lib_file";
redirect "nested@example.com";
