/*
 * cli_check: `postern check spf IP HELO SENDER` prints what the server
 * would find for mail from IP that says HELO and MAIL FROM:<SENDER>
 * (RFC 7208, both identities), with the reasons, through the resolver the
 * server asks ([queue] resolver). The same code as the server
 * (src/authn); --json for scripts. Exit 0 for any result: a fail is an
 * answer, not an error of the command.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "authn/authn.h"
#include "lib/config.h"
#include "lib/util.h"

static const char usage[] =
    "postern check spf IP HELO SENDER [-c FILE] [--json]\n"
    "  (SENDER \"\" for the null sender <>)";

static json_t *
outcome_json(const struct authn_spf_outcome *o)
{
	return json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:i,s:i}", "result",
	    authn_spf_result_name(o->result), "domain", o->domain, "sender",
	    o->sender, "reason", o->reason, "explanation", o->explanation,
	    "lookups", (int)o->lookups, "void_lookups", (int)o->voids);
}

static void
outcome_print(const char *identity, const struct authn_spf_outcome *o)
{
	printf("%-9s %-9s %s%s%s\n", identity,
	    authn_spf_result_name(o->result), o->domain ? o->domain : "-",
	    o->reason ? ": " : "", o->reason ? o->reason : "");
	if (o->explanation != NULL)
		printf("          explanation: %s\n", o->explanation);
}

static int
check_run(struct cli_admin *ad, const char *verb)
{
	struct authn_spf_verdict v;
	struct authn_spf_request req;
	char err[256];

	if (strcmp(verb, "spf") != 0 || ad->argc != 3) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	memset(&req, 0, sizeof(req));
	req.ip = ad->argv[0];
	req.helo = ad->argv[1];
	req.sender = ad->argv[2];
	req.receiver = ad->cfg->hostname;
	req.now = time(NULL);
	req.timeout = (unsigned)ad->cfg->spf_timeout;
	if (!is_authn_spf_ip(req.ip)) {
		fprintf(stderr, "postern check spf: '%s' is not an IPv4 or "
		    "IPv6 address\n", req.ip);
		return CLI_EXIT_USAGE;
	}
	if (authn_spf_check_now(ad->cfg->queue_resolver,
	    (uint16_t)ad->cfg->queue_resolver_port, &req, &v, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "postern check spf: %s\n", err);
		return CLI_EXIT_FAIL;
	}
	if (ad->is_json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o}", "ip", req.ip,
		    "helo", req.helo, "mail_from", req.sender, "mailfrom",
		    outcome_json(&v.mailfrom), "helo_result",
		    outcome_json(&v.helo));

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else {
		outcome_print("mailfrom", &v.mailfrom);
		outcome_print("helo", &v.helo);
	}
	authn_spf_outcome_deinit(&v.mailfrom);
	authn_spf_outcome_deinit(&v.helo);
	return CLI_EXIT_OK;
}

int
cli_check(int argc, char **argv)
{
	return cli_admin_main(argc, argv, usage, check_run);
}
