require "fileinto"; fileinto "A"; fileinto "A";
