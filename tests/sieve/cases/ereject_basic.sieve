# postern-only: ereject (RFC 5429 §2.1) is not offered by Pigeonhole 0.5.19 as Debian builds it
# expect: Performed actions:
# expect: * reject message with reason: Not accepted here
# expect: Implicit keep:
# expect: (none)
require "ereject"; ereject "Not accepted here";
