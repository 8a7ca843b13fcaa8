require "include"; include :once "lib_redirect"; include :once "lib_redirect";
