/*
 * cli_store: `postern store check [--repair]`: the store's integrity.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

static const char usage[] = "postern store check [--repair] [-c FILE]";

static void
report_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
}

int
cli_store(int argc, char **argv)
{
	struct cli_admin ad;
	bool is_repair = false;
	int rc, problems;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	/* --repair is ours; the shared options parser must not see it. */
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0) {
			is_repair = true;
			for (int j = i; j + 1 < argc; j++)
				argv[j] = argv[j + 1];
			argc--;
			break;
		}
	}
	rc = cli_admin_open(&ad, argc - 1, argv + 1, usage);
	if (rc != 0)
		return rc;
	problems = store_check(ad.store, is_repair, report_line, NULL);
	cli_admin_close(&ad);
	if (problems < 0)
		return cli_fail("cannot read the store");
	printf("store check: %d problem%s%s\n", problems,
	    problems == 1 ? "" : "s", problems && is_repair ?
	    " (repaired what could be)" : "");
	return problems == 0 || is_repair ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
