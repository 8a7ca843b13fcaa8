/*
 * cli_config: `postern config check`, which loads the configuration as
 * `postern serve` would and reports the first problem.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "net/net.h"

int
cli_parse_config_option(int argc, char **argv, const char *usage,
    const char **path_out)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = getenv("POSTERN_CONFIG");
	int ch;

	*path_out = env != NULL && *env != '\0' ? env : CLI_DEFAULT_CONFIG;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*path_out = optarg;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			exit(CLI_EXIT_OK);
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return -1;
		}
	}
	return optind;
}

int
cli_config(int argc, char **argv)
{
	static const char usage[] = "postern config check [-c FILE]";
	const char *path;
	char err[1024];
	struct config *cfg;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	if (cli_parse_config_option(argc - 1, argv + 1, usage, &path) < 0)
		return CLI_EXIT_USAGE;
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (net_certs_check(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return CLI_EXIT_USAGE;
	}
	printf("%s: ok (%zu listeners, %zu certificates)\n", path,
	    cfg->nlisteners, cfg->ncerts);
	config_free(&cfg);
	return CLI_EXIT_OK;
}
