keep; require "fileinto";
