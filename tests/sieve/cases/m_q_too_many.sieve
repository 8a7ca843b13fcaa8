if header :matches "subject" "Meeting tomorrow about the project?" { discard; }
