# message: encoded.eml
require ["encoded-character"]; if header :contains "subject" "Gr${unicode:fc}${unicode:DF}e" { discard; }
