require "fileinto"; fileinto "${a}";
