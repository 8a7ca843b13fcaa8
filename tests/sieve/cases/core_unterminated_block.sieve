if true { discard;
