# hash comment
/* bracket
   comment */ if /* inline */ true { discard; # trailing
}
