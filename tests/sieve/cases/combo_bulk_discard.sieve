# message: list.eml
if header :is "precedence" ["bulk", "junk", "list"] { discard; }
