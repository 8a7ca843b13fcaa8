/*
 * cli_check: `postern check spf IP HELO SENDER` prints what the server
 * would find for mail from IP that says HELO and MAIL FROM:<SENDER>
 * (RFC 7208, both identities), with the reasons, through the resolver the
 * server asks ([queue] resolver). `postern check dkim FILE` prints each
 * DKIM signature's result of the message in FILE (RFC 6376). The same
 * code as the server (src/authn); --json for scripts; --resolver
 * IP[:port] asks another DNS server. Exit 0 for any result: a fail is an
 * answer, not an error of the command.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "authn/authn.h"
#include "lib/config.h"
#include "lib/util.h"

static const char usage[] =
    "postern check spf IP HELO SENDER [-c FILE] [--json] "
    "[--resolver IP[:PORT]]\n"
    "  (SENDER \"\" for the null sender <>)\n"
    "postern check dkim FILE [-c FILE] [--json] [--resolver IP[:PORT]]";

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

/* The largest message read: the server's own limit. */
static char *
file_read(const char *path, size_t max, size_t *len_out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		size_t n;

		if (len + 65536 + 1 > cap) {
			cap = (len + 65536 + 1) * 2;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, 65536, f);
		len += n;
		if (n == 0 || len > max)
			break;
	}
	if (f != stdin)
		fclose(f);
	if (len > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	*len_out = len;
	return buf;
}

/* IP, IP:PORT, [IPv6]:PORT or a bare IPv6 address. */
static int
resolver_parse(const char *s, char *ip, size_t iplen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long p;

	*port = 53;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || (size_t)(close - s - 1) >= iplen)
			return -1;
		snprintf(ip, iplen, "%.*s", (int)(close - s - 1), s + 1);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && colon == NULL)
			return -1;
	} else if (colon != NULL && strchr(s, ':') == colon) {
		if ((size_t)(colon - s) >= iplen)
			return -1;
		snprintf(ip, iplen, "%.*s", (int)(colon - s), s);
	} else {
		snprintf(ip, iplen, "%s", s);
		colon = NULL;
	}
	if (colon != NULL) {
		p = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || p == 0 || p > 65535)
			return -1;
		*port = (uint16_t)p;
	}
	return is_authn_spf_ip(ip) ? 0 : -1;
}

static int
check_dkim(struct cli_admin *ad)
{
	const char *path = NULL, *resolver = ad->cfg->queue_resolver;
	uint16_t port = (uint16_t)ad->cfg->queue_resolver_port;
	struct authn_dkim_verdict v;
	char ip[64], err[256];
	char *msg;
	size_t len;

	if (ad->resolver != NULL) {
		if (resolver_parse(ad->resolver, ip, sizeof(ip), &port) < 0) {
			fprintf(stderr, "postern check dkim: '%s' is not IP "
			    "or IP:PORT\n", ad->resolver);
			return CLI_EXIT_USAGE;
		}
		resolver = ip;
	}
	if (ad->argc == 1)
		path = ad->argv[0];
	if (path == NULL) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	msg = file_read(path, ad->cfg->message_size, &len);
	if (msg == NULL) {
		fprintf(stderr, "postern check dkim: %s: %s\n", path,
		    strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (authn_dkim_check_now(resolver, port, msg, len, time(NULL),
	    (unsigned)ad->cfg->dkim_timeout, &v, err, sizeof(err)) < 0) {
		free(msg);
		fprintf(stderr, "postern check dkim: %s\n", err);
		return CLI_EXIT_FAIL;
	}
	free(msg);
	if (ad->is_json) {
		json_t *sigs = json_array();
		json_t *j;

		for (size_t i = 0; i < v.n; i++) {
			const struct authn_dkim_result *r = &v.sigs[i];

			json_array_append_new(sigs, json_pack("{s:s,s:s,s:s,"
			    "s:s,s:s,s:s,s:b,s:b,s:I}", "result",
			    authn_dkim_status_name(r->result), "domain",
			    r->domain, "selector", r->selector, "algorithm",
			    r->algorithm, "b", r->b, "reason", r->reason,
			    "testing", r->is_testing, "has_length",
			    r->has_length, "unsigned_tail",
			    (json_int_t)r->unsigned_tail));
		}
		j = json_pack("{s:s,s:o,s:I}", "result", v.n == 0 ? "none" :
		    authn_dkim_status_name(v.sigs[0].result), "signatures",
		    sigs, "ignored", (json_int_t)v.ignored);
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		return CLI_EXIT_OK;
	}
	if (v.n == 0)
		printf("none      no DKIM-Signature\n");
	for (size_t i = 0; i < v.n; i++) {
		const struct authn_dkim_result *r = &v.sigs[i];

		printf("%-9s d=%s s=%s a=%s b=%s: %s%s", authn_dkim_status_name(
		    r->result), r->domain[0] ? r->domain : "-",
		    r->selector[0] ? r->selector : "-",
		    r->algorithm[0] ? r->algorithm : "-", r->b[0] ? r->b : "-",
		    r->reason, r->is_testing ? " (testing key)" : "");
		if (r->has_length)
			printf(" (l=: %llu body bytes unsigned)",
			    (unsigned long long)r->unsigned_tail);
		putchar('\n');
	}
	if (v.ignored > 0)
		printf("(%zu more signatures not checked: at most %d are)\n",
		    v.ignored, AUTHN_DKIM_SIGS_MAX);
	return CLI_EXIT_OK;
}

static int
check_run(struct cli_admin *ad, const char *verb)
{
	struct authn_spf_verdict v;
	struct authn_spf_request req;
	const char *resolver = ad->cfg->queue_resolver;
	uint16_t port = (uint16_t)ad->cfg->queue_resolver_port;
	char err[256], ip[64];

	if (strcmp(verb, "dkim") == 0)
		return check_dkim(ad);
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
	if (ad->resolver != NULL) {
		if (resolver_parse(ad->resolver, ip, sizeof(ip), &port) < 0) {
			fprintf(stderr, "postern check spf: '%s' is not IP "
			    "or IP:PORT\n", ad->resolver);
			return CLI_EXIT_USAGE;
		}
		resolver = ip;
	}
	if (authn_spf_check_now(resolver, port, &req, &v, err,
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
