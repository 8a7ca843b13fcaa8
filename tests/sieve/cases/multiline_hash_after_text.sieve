require "fileinto";
fileinto text: # a comment
Folder
.
;
