require "fileinto"; if true { fileinto "A"; stop; } fileinto "B";
