require "include"; include "no_such_script";
