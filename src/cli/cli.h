/*
 * cli: the subcommands of the postern command. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status:
 * 0 success, 1 failure at run time, 2 bad usage or a bad configuration.
 * They run on the main thread.
 */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Where the configuration is when -c is not given. */
#define CLI_DEFAULT_CONFIG "/etc/postern/postern.conf"

int cli_serve(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_quickstart(int argc, char **argv);

/* Parses "-c FILE" / "--config FILE" from argv into *path_out (borrowed
 * from argv; the default otherwise). Returns the index of the first
 * argument that is not an option, or -1 after printing a usage error. */
int cli_parse_config_option(int argc, char **argv, const char *usage,
    const char **path_out);

#endif
