require "reject";
reject text:
Not wanted here.
..dot line
.
;
