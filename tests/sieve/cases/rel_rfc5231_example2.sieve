require ["relational", "fileinto"]; if header :value "lt" :comparator "i;ascii-casemap" ["x-priority"] ["3"] { fileinto "Urgent"; }
