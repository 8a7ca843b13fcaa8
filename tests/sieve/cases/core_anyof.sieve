if anyof (false, header :is "x-priority" "1") { discard; }
