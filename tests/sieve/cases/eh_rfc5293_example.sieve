require ["editheader", "fileinto"];
addheader "X-Source" "example";
if header :is "x-source" "example" { fileinto "marked"; }
