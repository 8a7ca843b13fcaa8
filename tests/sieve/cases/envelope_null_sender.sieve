# postern-only: sieve-test cannot take the null sender (-f "" and -f "<>" are refused); RFC 5228 §5.4 makes it the empty string
# expect: Performed actions:
# expect: * discard
# expect: Implicit keep:
# expect: (none)
# from: 
require "envelope"; if envelope :is "from" "" { discard; }
