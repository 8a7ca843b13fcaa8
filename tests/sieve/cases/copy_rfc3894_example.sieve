require ["copy", "envelope"]; if header :contains "subject" "project" { redirect :copy "boss@example.com"; }
