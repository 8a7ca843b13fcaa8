require "duplicate"; if duplicate :handle "h" :seconds 60 { discard; }
