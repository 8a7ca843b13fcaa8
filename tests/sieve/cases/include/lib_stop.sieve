require "fileinto";
fileinto "in-include";
stop;
