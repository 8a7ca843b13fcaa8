/*
 * cli_check: `postern check spf IP HELO SENDER` prints what the server
 * would find for mail from IP that says HELO and MAIL FROM:<SENDER>
 * (RFC 7208, both identities), with the reasons, through the resolver the
 * server asks ([queue] resolver). `postern check dkim FILE` prints each
 * DKIM signature's result of the message in FILE (RFC 6376). `postern
 * check dmarc FILE --ip IP --helo HELO --mail-from ADDR` does SPF and DKIM
 * for the message in FILE, then DMARC (RFC 7489) of its From: domain with
 * the Public Suffix List of [dmarc] psl_file. The same
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
#include <sys/random.h>

#include <jansson.h>

#include "authn/authn.h"
#include "lib/config.h"
#include "lib/util.h"
#include "mime/mime.h"

static const char usage[] =
    "postern check spf IP HELO SENDER [-c FILE] [--json] "
    "[--resolver IP[:PORT]]\n"
    "  (SENDER \"\" for the null sender <>)\n"
    "postern check dkim FILE [-c FILE] [--json] [--resolver IP[:PORT]]\n"
    "postern check dmarc FILE --ip IP --helo HELO --mail-from ADDR "
    "[-c FILE] [--json]\n"
    "  [--resolver IP[:PORT]]  (ADDR \"\" for the null sender <>)";

/* The options of check dmarc, taken out of argv before the common ones
 * are parsed. */
static struct {
	const char *ip, *helo, *mail_from;
} dm;

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

/* The header section's length: up to and with the empty line (CRLF or
 * LF line ends). */
static size_t
header_len(const char *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (m[i] != '\n')
			continue;
		if (i + 1 < n && m[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && m[i + 1] == '\r' && m[i + 2] == '\n')
			return i + 3;
	}
	return n;
}

static int
check_dmarc(struct cli_admin *ad)
{
	const struct config *cfg = ad->cfg;
	struct authn_spf_request sreq;
	struct authn_spf_verdict v;
	struct authn_dkim_verdict kv;
	struct authn_dmarc_dkim dkim[AUTHN_DMARC_DKIM_MAX];
	struct authn_dmarc_request req;
	struct authn_dmarc_outcome o;
	enum authn_dmarc_from from_rc;
	struct authn_psl *psl;
	char err[400], ip[64], domain[AUTHN_DOMAIN_MAX + 1], why[128];
	char comment[300], **addrs = NULL;
	const char *resolver = cfg->queue_resolver;
	uint16_t port = (uint16_t)cfg->queue_resolver_port, r = 0;
	size_t len = 0, nfields = 0;
	char *msg;
	int rc;

	if (ad->argc != 1 || dm.ip == NULL || dm.helo == NULL ||
	    dm.mail_from == NULL) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	if (!is_authn_spf_ip(dm.ip)) {
		fprintf(stderr, "postern check dmarc: '%s' is not an IPv4 or "
		    "IPv6 address\n", dm.ip);
		return CLI_EXIT_USAGE;
	}
	if (ad->resolver != NULL) {
		if (resolver_parse(ad->resolver, ip, sizeof(ip), &port) < 0) {
			fprintf(stderr, "postern check dmarc: '%s' is not IP "
			    "or IP:PORT\n", ad->resolver);
			return CLI_EXIT_USAGE;
		}
		resolver = ip;
	}
	msg = file_read(ad->argv[0], cfg->message_size, &len);
	if (msg == NULL) {
		fprintf(stderr, "postern check dmarc: %s: %s\n", ad->argv[0],
		    strerror(errno));
		return CLI_EXIT_FAIL;
	}
	psl = authn_psl_load(cfg->dmarc_psl_file, err, sizeof(err));
	if (psl == NULL) {
		fprintf(stderr, "postern check dmarc: [dmarc] psl_file: %s\n",
		    err);
		free(msg);
		return CLI_EXIT_FAIL;
	}
	rc = mime_header_mailboxes(msg, header_len(msg, len), "From", &addrs,
	    &nfields);
	from_rc = authn_dmarc_from_domain(rc, addrs, nfields, domain,
	    sizeof(domain), why, sizeof(why));
	if (rc == 0)
		mime_strings_free(&addrs);
	/* DKIM of the message, as the server verifies it. */
	if (authn_dkim_check_now(resolver, port, msg, len, time(NULL),
	    (unsigned)cfg->dkim_timeout, &kv, err, sizeof(err)) < 0)
		memset(&kv, 0, sizeof(kv));
	free(msg);

	memset(&sreq, 0, sizeof(sreq));
	sreq.ip = dm.ip;
	sreq.helo = dm.helo;
	sreq.sender = dm.mail_from;
	sreq.receiver = cfg->hostname;
	sreq.now = time(NULL);
	sreq.timeout = (unsigned)cfg->spf_timeout;
	if (authn_spf_check_now(resolver, port, &sreq, &v, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "postern check dmarc: %s\n", err);
		authn_psl_free(&psl);
		return CLI_EXIT_FAIL;
	}
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = 0;
	req = (struct authn_dmarc_request){
		.from_domain = from_rc == AUTHN_DMARC_FROM_OK ? domain : NULL,
		.spf = v.mailfrom.result,
		.spf_domain = v.mailfrom.domain,
		.dkim = dkim,
		.ndkim = authn_dmarc_dkim_from(&kv, dkim, AUTHN_DMARC_DKIM_MAX),
		.psl = psl,
		.sample = r % 100,
	};
	if (from_rc != AUTHN_DMARC_FROM_OK) {
		memset(&o, 0, sizeof(o));
		o.result = AUTHN_DMARC_PERMERROR;
		o.policy_tag = "p";
		snprintf(o.reason, sizeof(o.reason), "%s", why);
	} else if (authn_dmarc_check_now(resolver, port,
	    (unsigned)cfg->dmarc_timeout, &req, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern check dmarc: %s\n", err);
		authn_spf_outcome_deinit(&v.mailfrom);
		authn_spf_outcome_deinit(&v.helo);
		authn_psl_free(&psl);
		return CLI_EXIT_FAIL;
	}
	authn_dmarc_comment(&o, comment, sizeof(comment));
	if (ad->is_json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:s,s:{s:s,s:s,s:s,s:s,"
		    "s:s,s:s,s:s,s:s,s:b,s:b,s:b,s:s,s:s,s:s,s:i}}",
		    "ip", dm.ip, "helo", dm.helo, "mail_from", dm.mail_from,
		    "spf", outcome_json(&v.mailfrom),
		    "dkim", kv.n == 0 ? "none" :
		    authn_dkim_status_name(kv.sigs[0].result), "dmarc",
		    "result", authn_dmarc_result_name(o.result),
		    "from_domain", o.from_domain,
		    "org_domain", o.org_domain,
		    "policy_domain", o.policy_domain,
		    "policy", o.has_record ?
		    authn_dmarc_policy_name(o.record.p) : "",
		    "applied_tag", o.policy_tag,
		    "applied_policy", authn_dmarc_policy_name(o.policy),
		    "disposition", authn_dmarc_policy_name(o.disposition),
		    "spf_aligned", o.is_spf_aligned,
		    "dkim_aligned", o.is_dkim_aligned,
		    "sampled_out", o.is_sampled_out,
		    "dkim_domain", o.dkim_domain,
		    "reason", o.reason,
		    "comment", comment,
		    "queries", (int)o.queries);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else {
		outcome_print("spf", &v.mailfrom);
		for (size_t i = 0; i < kv.n; i++)
			printf("%-9s %-9s d=%s: %s\n", "dkim",
			    authn_dkim_status_name(kv.sigs[i].result),
			    kv.sigs[i].domain[0] ? kv.sigs[i].domain : "-",
			    kv.sigs[i].reason);
		printf("%-9s %-9s %s (%s)\n", "dmarc",
		    authn_dmarc_result_name(o.result),
		    o.from_domain[0] ? o.from_domain : "-", comment);
		if (o.has_record)
			printf("          policy of %s, %s=%s; %s\n",
			    o.policy_domain, o.policy_tag,
			    authn_dmarc_policy_name(o.policy), o.reason);
	}
	authn_spf_outcome_deinit(&v.mailfrom);
	authn_spf_outcome_deinit(&v.helo);
	authn_psl_free(&psl);
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
	if (strcmp(verb, "dmarc") == 0)
		return check_dmarc(ad);
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
	char **rest;
	int n = 0, rc;

	if (argc < 2 || strcmp(argv[1], "dmarc") != 0)
		return cli_admin_main(argc, argv, usage, check_run);
	/* check dmarc: its own options out, the common ones left. */
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	for (int i = 0; i < argc; i++) {
		const char **opt = strcmp(argv[i], "--ip") == 0 ? &dm.ip :
		    strcmp(argv[i], "--helo") == 0 ? &dm.helo :
		    strcmp(argv[i], "--mail-from") == 0 ? &dm.mail_from : NULL;

		if (opt != NULL && i + 1 < argc) {
			*opt = argv[++i];
			continue;
		}
		if (opt != NULL) {
			fprintf(stderr, "usage: %s\n", usage);
			free(rest);
			return CLI_EXIT_USAGE;
		}
		rest[n++] = argv[i];
	}
	rc = cli_admin_main(n, rest, usage, check_run);
	free(rest);
	return rc;
}
