require "include"; include :optional "no_such_script"; keep;
