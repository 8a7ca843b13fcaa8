if header :is "subject" "Meeting tomorrow about the \project" { discard; }
