require "fileinto";
if true {
  filein "x";
}
