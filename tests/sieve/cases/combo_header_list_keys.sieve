# message: minimal.eml
if header :is ["from", "to"] ["x", "b@example.com"] { discard; }
