/* never ends
keep;
