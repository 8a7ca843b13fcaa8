# message: list.eml
require "fileinto"; fileinto "Lists.acme-users";
