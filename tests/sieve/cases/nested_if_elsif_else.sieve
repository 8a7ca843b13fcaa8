require "fileinto"; if false { fileinto "a"; } elsif false { fileinto "b"; } else { if true { fileinto "c"; } else { fileinto "d"; } }
