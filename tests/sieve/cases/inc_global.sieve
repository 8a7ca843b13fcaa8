require "include"; include :global "glob_file";
