setflag "x";
