if header :index 1 :is "x-multi" "first" { discard; }
