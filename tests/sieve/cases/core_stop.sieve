stop; discard;
