require "fileinto";
fileinto "before-return";
return;
fileinto "not-reached";
