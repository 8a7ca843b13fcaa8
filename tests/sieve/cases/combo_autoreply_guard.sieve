# message: auto.eml
require "vacation"; if not header :contains "auto-submitted" "auto" { vacation "away"; }
