require ["encoded-character"]; if header :contains "subject" "${hex:4d 65 65 74}" { discard; }
