require "duplicate"; if duplicate :uniqueid "abc" :last { discard; }
