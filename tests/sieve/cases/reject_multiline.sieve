require "reject";
reject text:
Line one
Line two
.
;
