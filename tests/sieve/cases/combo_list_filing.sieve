# message: list.eml
require ["fileinto", "variables"];
if exists "list-id" {
  if header :matches "list-id" "*<*.*.*.*>" { fileinto "Lists.${2}"; }
}
