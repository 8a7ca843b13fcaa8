/*
 * main: the postern command. Every subcommand lives in src/cli.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "serve", cli_serve, "run the mail server" },
	{ "config", cli_config, "check the configuration (config check)" },
	{ "quickstart", cli_quickstart,
	    "write a working configuration and certificate for DOMAIN" },
	{ "domain", cli_domain, "add, delete, list domains; catch-all" },
	{ "user", cli_user, "add, delete, list, change accounts" },
	{ "alias", cli_alias, "add, delete, list aliases" },
	{ "app-password", cli_app_password,
	    "add, list, revoke per-device passwords" },
	{ "store", cli_store, "check the mail store (store check)" },
	{ "queue", cli_queue, "list, show, retry, hold, release, delete "
	    "outbound mail" },
	{ "dkim", cli_dkim, "make the DKIM key of a domain, show its record" },
	{ "dns", cli_dns, "print the DNS records of a domain; check them "
	    "(dns check)" },
	{ "check", cli_check, "check spf IP HELO SENDER, check dkim FILE: the "
	    "SPF or DKIM result the server would find" },
	{ "import", cli_import, "import an account's mail from Maildir or mbox" },
	{ "export", cli_export, "export an account's mail to Maildir or mbox" },
	{ "backup", cli_backup, "copy the data directory while the server "
	    "runs; backup verify" },
	{ "restore", cli_restore, "restore a backup into an empty data "
	    "directory" },
	{ "doctor", cli_doctor, "check the server: listeners, TLS, "
	    "certificates, DNS, queue, store, disk" },
	{ "sieve", cli_sieve, "test a Sieve script on a message; check its "
	    "syntax" },
	{ "migrate", cli_migrate, "copy mailboxes from another IMAP or POP3 "
	    "server" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: postern COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nthe configuration is read from -c FILE, $POSTERN_CONFIG "
	    "or %s\n", CLI_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "postern: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
