if header :matches "subject" "Meeting tomorrow about the projec?" { discard; }
