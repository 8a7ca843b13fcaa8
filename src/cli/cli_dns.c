/*
 * cli_dns: `postern dns DOMAIN` prints the DNS records a domain needs for
 * mail to reach us, leave us trusted, and for clients to find us; `postern
 * dns check DOMAIN` looks each of them up through the queue's resolver and
 * says, one line a record, what is published, what should be, and why it
 * matters. The records follow the configuration: the mail host is [server]
 * hostname, SRV records (RFC 6186, RFC 8314 §5.1) name only the services
 * the listeners offer, with their ports, and the DKIM key is the one
 * `postern dkim generate` made (made now when missing).
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "http/http.h"
#include "lib/config.h"
#include "lib/util.h"
#include "queue/queue.h"
#include "store/store.h"

static const char usage[] = "postern dns DOMAIN [--ip ADDR ...] | "
    "dns check DOMAIN [--ip ADDR ...]  [-c FILE] [--json]";

#define DNS_IPS_MAX 16

/* What a record is for decides how `dns check` compares it. */
enum dns_kind {
	DNS_K_MX, DNS_K_ADDR, DNS_K_SPF, DNS_K_DKIM, DNS_K_DMARC,
	DNS_K_MTASTS, DNS_K_TLSRPT, DNS_K_SRV, DNS_K_CNAME, DNS_K_CAA,
	DNS_K_PTR,
};

struct dns_rec {
	enum dns_kind kind;
	char *name;		/* owner, with the final dot */
	const char *type;
	char *value;		/* NULL: an address to fill in */
	bool is_required;	/* else recommended */
	const char *why;
};

struct dns_plan {
	char *domain;		/* lowercase, no final dot */
	char *host;		/* [server] hostname, lowercase */
	char *ips[DNS_IPS_MAX];
	size_t nips;
	bool is_ip_from_listeners;
	struct dns_rec recs[40];
	size_t nrecs;
	bool is_dkim_created;
	char *dkim_sel;
};

/* RFC 6186 and RFC 8314 §5.1 names, the implicit-TLS one of each pair
 * first (RFC 8314 prefers it). */
static const struct {
	const char *label;
	enum config_proto proto;
	enum config_tls tls;
} srv_services[] = {
	{ "_submissions._tcp", CONFIG_PROTO_SUBMISSION, CONFIG_TLS_IMPLICIT },
	{ "_submission._tcp", CONFIG_PROTO_SUBMISSION, CONFIG_TLS_STARTTLS },
	{ "_imaps._tcp", CONFIG_PROTO_IMAP, CONFIG_TLS_IMPLICIT },
	{ "_imap._tcp", CONFIG_PROTO_IMAP, CONFIG_TLS_STARTTLS },
	{ "_pop3s._tcp", CONFIG_PROTO_POP3, CONFIG_TLS_IMPLICIT },
	{ "_pop3._tcp", CONFIG_PROTO_POP3, CONFIG_TLS_STARTTLS },
};

static const char *const why_mx = "Other servers deliver the domain's "
    "mail to the host its MX names; without it mail goes to the domain's "
    "own address or nowhere.";
static const char *const why_addr = "The MX host needs an address, and "
    "clients connect to it by name.";
static const char *const why_spf = "SPF tells receivers which servers may "
    "send the domain's mail; without it, or without this server in it, "
    "mail lands in spam or is refused.";
static const char *const why_dkim = "Receivers check the signature on "
    "every message against this key; a missing or different key fails "
    "DKIM and with it DMARC.";
static const char *const why_dmarc = "DMARC tells receivers what to do "
    "with mail that fails SPF and DKIM; large providers expect it from "
    "every sender.";
static const char *const why_mtasts = "MTA-STS lets senders insist on "
    "TLS to this server (RFC 8461); the policy is served at "
    "https://mta-sts.DOMAIN/.well-known/mta-sts.txt.";
static const char *const why_tlsrpt = "TLS-RPT asks senders to report "
    "failed TLS connections to postmaster (RFC 8460).";
static const char *const why_srv = "Mail clients read SRV records to find "
    "the server and port (RFC 6186); \". 0\" says a service is not "
    "offered.";
static const char *const why_cname = "Clients and the MTA-STS policy "
    "fetch look up this name; it must lead to the mail host.";
static const char *const why_caa = "CAA names the certificate authority "
    "that may issue certificates for the domain: the ACME CA's issuer "
    "domain, [acme] caa (letsencrypt.org for Let's Encrypt).";
static const char *const why_ptr = "Many receivers refuse mail from an "
    "address whose reverse DNS does not name the sending host; only the "
    "hosting provider can set it.";

static char *
lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Compares two names, ignoring case and one final dot. */
static bool
is_name_same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* Whether a listener's address is one the world can reach us at: not the
 * wildcard, not loopback, not a private or link-local network. */
static bool
is_addr_public(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		return !(a == 0 || (a >> 24) == 127 || (a >> 24) == 10 ||
		    (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
		    (a >> 16) == 0xa9fe);
	}
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return !(IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		    IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) ||
		    (a6.s6_addr[0] & 0xfe) == 0xfc ||
		    IN6_IS_ADDR_V4MAPPED(&a6));
	return false;
}

static bool
is_v6(const char *ip)
{
	return strchr(ip, ':') != NULL;
}

static void
rec_add(struct dns_plan *p, enum dns_kind kind, char *name, const char *type,
    char *value, bool is_required, const char *why)
{
	struct dns_rec *r;

	if (p->nrecs >= sizeof(p->recs) / sizeof(p->recs[0]))
		panic("cli_dns: too many records");
	r = &p->recs[p->nrecs++];
	r->kind = kind;
	r->name = name;
	r->type = type;
	r->value = value;
	r->is_required = is_required;
	r->why = why;
}

/* The first listener of proto with TLS kind tls and a fixed port. */
static const struct config_listener *
listener_find(const struct config *cfg, enum config_proto proto,
    enum config_tls tls)
{
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		if (l->proto == proto && l->tls == tls && l->port != 0)
			return l;
	}
	return NULL;
}

/* "203.0.113.7" -> "7.113.0.203.in-addr.arpa." (RFC 1035 §3.5, RFC 3596
 * §2.5); NULL for text that is not an address. */
static char *
ptr_name(const char *ip)
{
	unsigned char a[16];
	char buf[80];
	size_t o = 0;

	if (inet_pton(AF_INET, ip, a) == 1)
		return xasprintf("%u.%u.%u.%u.in-addr.arpa.", a[3], a[2], a[1],
		    a[0]);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return NULL;
	for (int i = 15; i >= 0; i--)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%x.%x.",
		    a[i] & 0xf, a[i] >> 4);
	return xasprintf("%sip6.arpa.", buf);
}

static void
plan_free(struct dns_plan *p)
{
	for (size_t i = 0; i < p->nrecs; i++) {
		free(p->recs[i].name);
		free(p->recs[i].value);
	}
	for (size_t i = 0; i < p->nips; i++)
		free(p->ips[i]);
	free(p->domain);
	free(p->host);
	free(p->dkim_sel);
	memset(p, 0, sizeof(*p));
}

/* Fills p with the records of domain. ips (borrowed, checked) are the
 * addresses of the mail host when given. Returns 0, or the exit status
 * after printing why. */
static int
plan_make(struct cli_admin *ad, struct dns_plan *p, const char *domain_arg,
    char **ips, size_t nips, bool is_create_dkim)
{
	const struct config *cfg = ad->cfg;
	const char *d, *h;
	char *dkim_value = NULL;

	memset(p, 0, sizeof(*p));
	if (strlen(domain_arg) > 253 || domain_arg[0] == '.' ||
	    strchr(domain_arg, '/') != NULL ||
	    !is_store_domain_local(ad->store, domain_arg))
		return cli_fail("%s is not one of our domains (postern domain "
		    "add %s)", domain_arg, domain_arg);
	p->domain = lower_dup(domain_arg);
	p->host = lower_dup(cfg->hostname);
	d = p->domain;
	h = p->host;
	for (size_t i = 0; i < nips; i++)
		p->ips[p->nips++] = xstrdup(ips[i]);
	if (p->nips == 0) {
		for (size_t i = 0; i < cfg->nlisteners &&
		    p->nips < DNS_IPS_MAX; i++) {
			const char *a = cfg->listeners[i].address;
			bool is_dup = false;

			if (!is_addr_public(a))
				continue;
			for (size_t j = 0; j < p->nips; j++)
				is_dup |= strcmp(p->ips[j], a) == 0;
			if (!is_dup)
				p->ips[p->nips++] = xstrdup(a);
		}
		p->is_ip_from_listeners = p->nips > 0;
	}
	if (cli_dkim_record(ad, d, is_create_dkim, &p->dkim_sel, &dkim_value,
	    &p->is_dkim_created) < 0 && is_create_dkim) {
		plan_free(p);
		return CLI_EXIT_FAIL;
	}

	rec_add(p, DNS_K_MX, xasprintf("%s.", d), "MX",
	    xasprintf("10 %s.", h), true, why_mx);
	if (p->nips == 0) {
		rec_add(p, DNS_K_ADDR, xasprintf("%s.", h), "A", NULL, true,
		    why_addr);
	} else {
		for (size_t i = 0; i < p->nips; i++)
			rec_add(p, DNS_K_ADDR, xasprintf("%s.", h),
			    is_v6(p->ips[i]) ? "AAAA" : "A",
			    xstrdup(p->ips[i]), true, why_addr);
	}
	rec_add(p, DNS_K_SPF, xasprintf("%s.", d), "TXT",
	    xstrdup("v=spf1 mx -all"), true, why_spf);
	if (dkim_value != NULL)
		rec_add(p, DNS_K_DKIM, xasprintf("%s._domainkey.%s.",
		    p->dkim_sel, d), "TXT", dkim_value, true, why_dkim);
	rec_add(p, DNS_K_DMARC, xasprintf("_dmarc.%s.", d), "TXT",
	    xasprintf("v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", d),
	    true, why_dmarc);
	{
		/* RFC 8461 §3.1: the id changes whenever the policy the
		 * HTTPS listener serves does (a hash of its text). */
		char *id = http_mtasts_id(cfg);

		rec_add(p, DNS_K_MTASTS, xasprintf("_mta-sts.%s.", d), "TXT",
		    xasprintf("v=STSv1; id=%s", id), false, why_mtasts);
		free(id);
	}
	rec_add(p, DNS_K_TLSRPT, xasprintf("_smtp._tls.%s.", d), "TXT",
	    xasprintf("v=TLSRPTv1; rua=mailto:postmaster@%s", d), false,
	    why_tlsrpt);
	for (size_t i = 0; i < sizeof(srv_services) / sizeof(srv_services[0]);
	    i++) {
		const struct config_listener *l = listener_find(cfg,
		    srv_services[i].proto, srv_services[i].tls);

		/* RFC 6186 §4, RFC 2782: target "." says "not here". */
		rec_add(p, DNS_K_SRV, xasprintf("%s.%s.", srv_services[i].label,
		    d), "SRV", l != NULL ? xasprintf("0 1 %u %s.",
		    (unsigned)l->port, h) : xstrdup("0 0 0 ."), false,
		    why_srv);
	}
	rec_add(p, DNS_K_CNAME, xasprintf("autoconfig.%s.", d), "CNAME",
	    xasprintf("%s.", h), false, why_cname);
	rec_add(p, DNS_K_CNAME, xasprintf("autodiscover.%s.", d), "CNAME",
	    xasprintf("%s.", h), false, why_cname);
	rec_add(p, DNS_K_CNAME, xasprintf("mta-sts.%s.", d), "CNAME",
	    xasprintf("%s.", h), false, why_cname);
	/* NULL: [acme] directory is not Let's Encrypt's and [acme] caa
	 * is unset; the issuer domain is the CA's to say (RFC 8659 §4.2). */
	rec_add(p, DNS_K_CAA, xasprintf("%s.", d), "CAA",
	    cfg->acme_caa != NULL ? xasprintf("0 issue \"%s\"",
	    cfg->acme_caa) : NULL, false, why_caa);
	for (size_t i = 0; i < p->nips; i++)
		rec_add(p, DNS_K_PTR, ptr_name(p->ips[i]), "PTR",
		    xasprintf("%s.", h), true, why_ptr);
	return 0;
}

/* ---- postern dns DOMAIN --------------------------------------------- */

/* A TXT value as zone-file strings: quoted, '"' and '\' escaped, at most
 * 255 bytes a string (RFC 1035 §3.3.14). */
static void
txt_print(const char *v)
{
	size_t n = strlen(v);

	if (n > 255)
		fputs("( ", stdout);
	for (size_t i = 0; i < n || i == 0; i += 255) {
		if (i > 0)
			putchar(' ');
		putchar('"');
		for (size_t j = i; j < n && j < i + 255; j++) {
			if (v[j] == '"' || v[j] == '\\')
				putchar('\\');
			putchar(v[j]);
		}
		putchar('"');
	}
	if (n > 255)
		fputs(" )", stdout);
}

static int
zone_print(struct cli_admin *ad, struct dns_plan *p)
{
	size_t nptr = 0;

	if (ad->is_json) {
		json_t *arr = json_array(), *j;

		for (size_t i = 0; i < p->nrecs; i++) {
			struct dns_rec *r = &p->recs[i];

			json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,"
			    "s:b,s:s}", "name", r->name, "type", r->type,
			    "value", r->value, "required", r->is_required,
			    "why", r->why));
		}
		j = json_pack("{s:s,s:s,s:b,s:o}", "domain", p->domain, "host",
		    p->host, "dkim_created", p->is_dkim_created, "records",
		    arr);
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		return CLI_EXIT_OK;
	}
	printf("; DNS records for %s, mail host %s (postern dns)\n",
	    p->domain, p->host);
	if (p->is_dkim_created)
		printf("; a DKIM key was made for %s now (selector %s); mail "
		    "from it is signed from now on\n", p->domain, p->dkim_sel);
	for (size_t i = 0; i < p->nrecs; i++) {
		struct dns_rec *r = &p->recs[i];

		if (r->kind == DNS_K_PTR) {
			printf("; PTR: ask your hosting provider to set the "
			    "reverse DNS of %s to %s\n;   %s 3600 IN PTR %s\n",
			    p->ips[nptr < p->nips ? nptr : 0], r->value,
			    r->name, r->value);
			nptr++;
			continue;
		}
		if (r->kind == DNS_K_ADDR && r->value == NULL) {
			printf("; FILL IN: %s IN A <public IPv4 address of "
			    "the server> (and AAAA for IPv6): the listeners "
			    "listen on no public address; run postern dns %s "
			    "--ip ADDR\n", r->name, p->domain);
			continue;
		}
		if (r->kind == DNS_K_CAA && r->value == NULL) {
			printf("; FILL IN: %s IN CAA 0 issue \"<your CA's "
			    "issuer domain>\": [acme] directory is not Let's "
			    "Encrypt's; set [acme] caa to the domain your CA "
			    "documents\n", r->name);
			continue;
		}
		if (r->kind == DNS_K_SRV && r->value[0] == '0' &&
		    strcmp(r->value, "0 0 0 .") == 0)
			printf("; %s: not offered by any listener\n", r->name);
		printf("%s 3600 IN %s ", r->name, r->type);
		if (strcmp(r->type, "TXT") == 0)
			txt_print(r->value);
		else
			fputs(r->value, stdout);
		putchar('\n');
	}
	if (p->nips == 0)
		printf("; PTR: ask your hosting provider to set the reverse DNS "
		    "of the server's address to %s.\n", p->host);
	return CLI_EXIT_OK;
}

/* ---- postern dns check DOMAIN --------------------------------------- */

void
cli_report_line(struct cli_report *rep, enum cli_mark mark,
    const char *what, const char *name, const char *published,
    const char *expected, const char *text)
{
	static const char *const sign[] = { "\u2713", "\u26a0", "\u2717" };
	static const char *const word[] = { "ok", "warn", "fail" };

	if (mark == CLI_MARK_FAIL)
		rep->fails++;
	else if (mark == CLI_MARK_WARN)
		rep->warns++;
	if (rep->items != NULL) {
		json_array_append_new(rep->items, json_pack("{s:s,s:s,s:s?,"
		    "s:s?,s:s?,s:s}", "status", word[mark], "check", what,
		    "name", name, "published", published, "expected",
		    expected, "text", text));
		return;
	}
	printf("%s %s", sign[mark], what);
	if (name != NULL)
		printf(" %s", name);
	if (published != NULL)
		printf(" | published: %s", published);
	if (expected != NULL)
		printf(" | expected: %s", expected);
	printf(" | %s\n", text);
	fflush(stdout);
}

/* The records found, joined with " ; " for a line ("none" for none). */
static char *
rrs_join(char **rrs, size_t n, enum queue_lookup_result res)
{
	char *s = NULL;

	if (res == QUEUE_LOOKUP_FAIL)
		return xstrdup("(lookup failed)");
	if (n == 0)
		return xstrdup("none");
	for (size_t i = 0; i < n; i++) {
		char *t = xasprintf("%s%s%s", s != NULL ? s : "",
		    s != NULL ? " ; " : "", rrs[i]);

		free(s);
		s = t;
	}
	return s;
}

/* The TXT records at name that start with prefix (a version tag such as
 * "v=spf1"), case-insensitive, followed by ';', space or the end. */
static size_t
txt_tagged(char **rrs, size_t n, const char *prefix, char **found,
    size_t max)
{
	size_t k = 0, pl = strlen(prefix);

	for (size_t i = 0; i < n; i++) {
		if (strncasecmp(rrs[i], prefix, pl) == 0 &&
		    (rrs[i][pl] == '\0' || rrs[i][pl] == ' ' ||
		    rrs[i][pl] == ';') && k < max)
			found[k++] = rrs[i];
	}
	return k;
}

/* The value of tag (e.g. "p") in a tag=value list (RFC 6376 §3.2), with
 * white space removed; NULL when absent. */
static char *
tag_value(const char *rec, const char *tag)
{
	const char *s = rec;
	size_t tl = strlen(tag);

	while (*s != '\0') {
		const char *e = strchr(s, ';');
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
		const char *k = s;

		while (k < s + len && isspace((unsigned char)*k))
			k++;
		if ((size_t)(s + len - k) > tl && strncasecmp(k, tag, tl) == 0) {
			const char *q = k + tl;

			while (q < s + len && isspace((unsigned char)*q))
				q++;
			if (q < s + len && *q == '=') {
				char *v = xmalloc(len + 1);
				size_t o = 0;

				for (q++; q < s + len; q++) {
					if (!isspace((unsigned char)*q))
						v[o++] = *q;
				}
				v[o] = '\0';
				return v;
			}
		}
		s += len;
		if (*s == ';')
			s++;
	}
	return NULL;
}

/* SPF (RFC 7208) read far enough to say whether this server may send and
 * what happens to everyone else. */
static void
spf_judge(struct dns_plan *p, const char *rec, enum cli_mark *mark,
    const char **text)
{
	char *copy = xstrdup(rec), *save = NULL, *t;
	bool is_ours = false, is_indirect = false;
	char all = 0;

	t = strtok_r(copy, " ", &save);	/* v=spf1 */
	while ((t = strtok_r(NULL, " ", &save)) != NULL) {
		char q = '+';
		const char *arg;

		if (strchr("+-~?", *t) != NULL)
			q = *t++;
		arg = strpbrk(t, ":=");
		if (strcasecmp(t, "all") == 0) {
			all = q;
			break;
		}
		if (q != '+')
			continue;
		if (strncasecmp(t, "mx", 2) == 0 && (t[2] == '\0' ||
		    t[2] == '/' || (t[2] == ':' && is_name_same(t + 3,
		    p->domain))))
			is_ours = true;
		else if (strncasecmp(t, "a", 1) == 0 && (t[1] == '\0' ||
		    t[1] == '/') && is_name_same(p->domain, p->host))
			is_ours = true;
		else if (strncasecmp(t, "a:", 2) == 0 && is_name_same(t + 2,
		    p->host))
			is_ours = true;
		else if ((strncasecmp(t, "ip4:", 4) == 0 ||
		    strncasecmp(t, "ip6:", 4) == 0) && arg != NULL) {
			for (size_t i = 0; i < p->nips; i++)
				is_ours |= strcasecmp(arg + 1, p->ips[i]) == 0;
		} else if (strncasecmp(t, "include:", 8) == 0 ||
		    strncasecmp(t, "redirect=", 9) == 0)
			is_indirect = true;
	}
	free(copy);
	if (all == '+') {
		*mark = CLI_MARK_FAIL;
		*text = "+all lets every server on the Internet send as the "
		    "domain.";
	} else if (!is_ours && !is_indirect) {
		*mark = CLI_MARK_FAIL;
		*text = "does not name this server (mx): receivers see our "
		    "mail fail SPF.";
	} else if (!is_ours) {
		*mark = CLI_MARK_WARN;
		*text = "names this server only through include:/redirect=, "
		    "which was not followed; add mx.";
	} else if (all == '~' || all == '?' || all == 0) {
		*mark = CLI_MARK_WARN;
		*text = "names this server, but other senders only soft-fail "
		    "(~all, ?all or no all): forged mail is delivered to spam "
		    "instead of refused; -all is stricter.";
	} else {
		*mark = CLI_MARK_OK;
		*text = "names this server; every other sender fails.";
	}
}

static bool
is_in(char **rrs, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++) {
		if (is_name_same(rrs[i], v))
			return true;
	}
	return false;
}

static void
rec_check(struct queue_lookup *lk, struct dns_plan *p, struct dns_rec *r,
    struct cli_report *rep)
{
	char **rrs = NULL, *found[8], *pub, *v = NULL, *exp;
	size_t n = 0, k;
	enum queue_lookup_result res;
	enum cli_mark mark = CLI_MARK_OK;
	const char *text = NULL, *type = r->type;
	char what[32], what_caa[320];
	bool is_present;

	if (r->kind == DNS_K_ADDR && r->value == NULL)
		type = "A";
	res = queue_lookup_query(lk, r->name, type, &rrs, &n);
	if (r->kind == DNS_K_ADDR && r->value == NULL && n == 0) {
		queue_lookup_rrs_free(&rrs, n);
		res = queue_lookup_query(lk, r->name, "AAAA", &rrs, &n);
	}
	pub = rrs_join(rrs, n, res);
	is_present = res == QUEUE_LOOKUP_OK;
	exp = r->value != NULL ? xstrdup(r->value) :
	    r->kind == DNS_K_CAA ? xstrdup("0 issue \"<your CA's issuer "
	    "domain>\"") : xstrdup("the server's public address");
	snprintf(what, sizeof(what), "%s", type);
	switch (r->kind) {
	case DNS_K_MX:
		snprintf(what, sizeof(what), "MX");
		if (!is_present) {
			mark = CLI_MARK_FAIL;
			text = "no MX record: other servers cannot find where "
			    "to deliver.";
		} else {
			bool is_ours = false;

			for (size_t i = 0; i < n; i++) {
				const char *h = strchr(rrs[i], ' ');

				is_ours |= h != NULL && is_name_same(h + 1,
				    p->host);
			}
			mark = is_ours ? CLI_MARK_OK : CLI_MARK_FAIL;
			text = is_ours ? "names this server." : "does not name "
			    "this server: mail for the domain goes elsewhere.";
		}
		break;
	case DNS_K_ADDR:
		if (!is_present) {
			mark = CLI_MARK_FAIL;
			text = "the mail host has no address.";
		} else if (r->value == NULL) {
			text = "the mail host has an address (not compared: "
			    "give --ip to compare).";
		} else if (is_in(rrs, n, r->value)) {
			text = "the mail host's address.";
		} else {
			mark = CLI_MARK_FAIL;
			text = "the mail host's name leads to another address.";
		}
		break;
	case DNS_K_SPF:
		snprintf(what, sizeof(what), "SPF");
		k = txt_tagged(rrs, n, "v=spf1", found, 8);
		if (k == 0) {
			mark = CLI_MARK_FAIL;
			text = "no SPF record.";
		} else if (k > 1) {
			mark = CLI_MARK_FAIL;
			text = "more than one SPF record: receivers treat that "
			    "as an error (RFC 7208 §4.5).";
		} else {
			spf_judge(p, found[0], &mark, &text);
		}
		break;
	case DNS_K_DKIM: {
		char *ours = tag_value(r->value, "p");

		snprintf(what, sizeof(what), "DKIM");
		k = txt_tagged(rrs, n, "v=DKIM1", found, 8);
		if (k == 0 && n > 0)
			k = txt_tagged(rrs, n, "k=", found, 8);
		if (k == 0 && n > 0)
			k = txt_tagged(rrs, n, "p=", found, 8);
		if (k == 0) {
			mark = CLI_MARK_FAIL;
			text = "no DKIM record for this selector: receivers "
			    "cannot check our signatures.";
		} else {
			v = tag_value(found[0], "p");
			if (v == NULL || v[0] == '\0') {
				mark = CLI_MARK_FAIL;
				text = "the key is empty (revoked).";
			} else if (strcmp(v, ours) != 0) {
				mark = CLI_MARK_FAIL;
				text = "a different public key: our signatures "
				    "fail.";
			} else {
				text = "the public key of our signing key.";
			}
		}
		free(ours);
		break;
	}
	case DNS_K_DMARC:
		snprintf(what, sizeof(what), "DMARC");
		k = txt_tagged(rrs, n, "v=DMARC1", found, 8);
		if (k == 0) {
			mark = CLI_MARK_FAIL;
			text = "no DMARC record.";
		} else if (k > 1) {
			mark = CLI_MARK_FAIL;
			text = "more than one DMARC record: receivers ignore "
			    "them all (RFC 7489 §6.6.3).";
		} else {
			v = tag_value(found[0], "p");
			if (v == NULL) {
				mark = CLI_MARK_FAIL;
				text = "no policy (p=).";
			} else if (strcasecmp(v, "quarantine") == 0 ||
			    strcasecmp(v, "reject") == 0) {
				text = "a policy that protects the domain.";
			} else if (strcasecmp(v, "none") == 0) {
				mark = CLI_MARK_WARN;
				text = "p=none only monitors: forged mail is "
				    "still delivered.";
			} else {
				mark = CLI_MARK_FAIL;
				text = "an unknown policy.";
			}
		}
		break;
	case DNS_K_MTASTS:
	case DNS_K_TLSRPT: {
		bool is_mtasts = r->kind == DNS_K_MTASTS;

		snprintf(what, sizeof(what), is_mtasts ? "MTA-STS" :
		    "TLS-RPT");
		k = txt_tagged(rrs, n, is_mtasts ? "v=STSv1" : "v=TLSRPTv1",
		    found, 8);
		if (k == 0) {
			mark = CLI_MARK_WARN;
			text = is_mtasts ? "not published (recommended)." :
			    "not published (recommended).";
		} else {
			v = tag_value(found[0], is_mtasts ? "id" : "rua");
			mark = v != NULL && v[0] != '\0' && k == 1 ?
			    CLI_MARK_OK : CLI_MARK_FAIL;
			text = mark == CLI_MARK_OK ? "published." : is_mtasts ?
			    "not one record with an id=." :
			    "not one record with a rua=.";
			if (mark == CLI_MARK_OK && is_mtasts) {
				char *want = tag_value(r->value, "id");

				/* RFC 8461 §3.1: senders fetch the policy
				 * again only when the id changes. */
				if (want != NULL && strcmp(v, want) != 0) {
					mark = CLI_MARK_WARN;
					text = "published with another id than "
					    "the policy served now has: senders "
					    "keep the policy they cached until "
					    "its max_age ends; publish the new "
					    "id.";
				}
				free(want);
			}
		}
		break;
	}
	case DNS_K_SRV: {
		bool is_offered = strcmp(r->value, "0 0 0 .") != 0;
		const char *port = r->value + 4;	/* "0 1 PORT HOST." */
		bool is_match = false, is_ours = false;

		snprintf(what, sizeof(what), "SRV");
		for (size_t i = 0; i < n; i++) {
			unsigned pr, w, po;
			char host[256];

			if (sscanf(rrs[i], "%u %u %u %255s", &pr, &w, &po,
			    host) != 4)
				continue;
			if (!is_offered) {
				is_match |= strcmp(host, ".") == 0 ||
				    host[0] == '\0';
				is_ours |= is_name_same(host, p->host);
			} else {
				is_match |= is_name_same(host, p->host) &&
				    po == (unsigned)atoi(port);
			}
		}
		if (!is_present) {
			mark = CLI_MARK_WARN;
			text = is_offered ? "not published: clients guess "
			    "(recommended)." : "not published: clients may "
			    "try a service that is not offered (recommended).";
		} else if (is_match) {
			text = is_offered ? "names this server and port." :
			    "says the service is not offered.";
		} else if (!is_offered && !is_ours) {
			mark = CLI_MARK_WARN;
			text = "names another host, for a service this server "
			    "does not offer.";
		} else {
			mark = CLI_MARK_FAIL;
			text = is_offered ? "leads clients to another host or "
			    "port." : "leads clients to a service this server "
			    "does not offer.";
		}
		break;
	}
	case DNS_K_CNAME:
		if (is_present && is_in(rrs, n, r->value)) {
			text = "leads to the mail host.";
		} else if (is_present) {
			mark = CLI_MARK_FAIL;
			text = "leads to another host.";
		} else {
			char **a = NULL;
			size_t na = 0;
			bool is_ours = false;

			queue_lookup_query(lk, r->name, "A", &a, &na);
			for (size_t i = 0; i < na; i++) {
				for (size_t j = 0; j < p->nips; j++)
					is_ours |= strcmp(a[i], p->ips[j]) == 0;
			}
			if (is_ours) {
				text = "an A record with the mail host's address "
				    "(a CNAME would follow it).";
			} else if (na > 0) {
				mark = CLI_MARK_FAIL;
				free(pub);
				pub = rrs_join(a, na, QUEUE_LOOKUP_OK);
				text = "an address that is not the mail host's.";
			} else {
				mark = CLI_MARK_WARN;
				text = "not published (recommended).";
			}
			queue_lookup_rrs_free(&a, na);
		}
		break;
	case DNS_K_CAA: {
		bool is_issue = false, is_le = false;
		char ca[256] = "";

		/* Ours is 0 issue "DOMAIN" (rec_add above). */
		if (r->value != NULL)
			sscanf(r->value, "0 issue \"%255[^\"]", ca);

		for (size_t i = 0; i < n; i++) {
			unsigned fl;
			char tag[32], val[256];

			if (sscanf(rrs[i], "%u %31s \"%255[^\"]", &fl, tag,
			    val) != 3 || strcasecmp(tag, "issue") != 0)
				continue;
			is_issue = true;
			val[strcspn(val, "; ")] = '\0';
			is_le |= strcasecmp(val, ca) == 0;
		}
		if (!is_present) {
			mark = CLI_MARK_WARN;
			text = "not published: any CA may issue (recommended).";
		} else if (r->value == NULL) {
			text = "published (not compared: set [acme] caa to "
			    "your CA's issuer domain).";
		} else if (is_issue && !is_le) {
			mark = CLI_MARK_FAIL;
			snprintf(what_caa, sizeof(what_caa), "%s may not issue: "
			    "ACME certificates cannot be renewed.", ca);
			text = what_caa;
		} else {
			snprintf(what_caa, sizeof(what_caa), "%s may issue.",
			    ca);
			text = what_caa;
		}
		break;
	}
	case DNS_K_PTR:
		if (!is_present) {
			mark = CLI_MARK_FAIL;
			text = "no reverse DNS: ask the hosting provider to set "
			    "it.";
		} else if (is_in(rrs, n, r->value)) {
			text = "the reverse DNS names the mail host.";
		} else {
			mark = CLI_MARK_FAIL;
			text = "the reverse DNS names another host: ask the "
			    "hosting provider to change it.";
		}
		break;
	}
	if (res == QUEUE_LOOKUP_FAIL && mark != CLI_MARK_OK) {
		mark = CLI_MARK_FAIL;
		text = "the lookup failed (no answer from the resolver).";
	}
	if (!r->is_required && mark == CLI_MARK_FAIL && !is_present)
		mark = CLI_MARK_WARN;
	{
		char *line = xasprintf("%s %s", text, r->why);

		cli_report_line(rep, mark, what, r->name, pub, exp, line);
		free(line);
	}
	free(v);
	free(exp);
	free(pub);
	queue_lookup_rrs_free(&rrs, n);
}

int
cli_dns_check_domain(struct cli_admin *ad, const char *domain, char **ips,
    size_t nips, struct cli_report *rep)
{
	struct queue_lookup *lk;
	struct dns_plan p;
	char err[256];
	int rc;

	rc = plan_make(ad, &p, domain, ips, nips, false);
	if (rc != 0)
		return rc;
	lk = queue_lookup_new(ad->cfg->queue_resolver,
	    (uint16_t)ad->cfg->queue_resolver_port, err, sizeof(err));
	if (lk == NULL) {
		plan_free(&p);
		return cli_fail("%s", err);
	}
	{
		char **rrs = NULL;
		size_t n = 0;

		/* A resolver that does not answer would cost every record its
		 * timeout: one line says it instead. */
		if (queue_lookup_query(lk, p.recs[0].name, "MX", &rrs, &n) ==
		    QUEUE_LOOKUP_FAIL) {
			snprintf(err, sizeof(err), "the resolver (%s) does not "
			    "answer: check [queue] resolver or "
			    "/etc/resolv.conf.", ad->cfg->queue_resolver !=
			    NULL ? ad->cfg->queue_resolver : "the system's");
			cli_report_line(rep, CLI_MARK_FAIL, "DNS", p.domain,
			    NULL, NULL, err);
			queue_lookup_free(&lk);
			plan_free(&p);
			return 0;
		}
		queue_lookup_rrs_free(&rrs, n);
	}
	if (p.dkim_sel == NULL)
		cli_report_line(rep, CLI_MARK_FAIL, "DKIM", NULL, NULL, NULL,
		    "the domain has no DKIM key: run postern dkim generate "
		    "DOMAIN (or postern dns DOMAIN) and publish the record.");
	for (size_t i = 0; i < p.nrecs; i++)
		rec_check(lk, &p, &p.recs[i], rep);
	queue_lookup_free(&lk);
	plan_free(&p);
	return 0;
}

/* --ip ADDR options, taken out of argv (they may repeat). */
static int
ips_take(int *argc, char **argv, char **ips, size_t *nips)
{
	int n = 0;

	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--ip") == 0) {
			unsigned char a[16];

			if (i + 1 >= *argc || (inet_pton(AF_INET, argv[i + 1],
			    a) != 1 && inet_pton(AF_INET6, argv[i + 1], a) !=
			    1)) {
				fprintf(stderr, "postern: --ip needs a numeric "
				    "IPv4 or IPv6 address\n");
				return -1;
			}
			if (*nips >= DNS_IPS_MAX) {
				fprintf(stderr, "postern: at most %d --ip\n",
				    DNS_IPS_MAX);
				return -1;
			}
			ips[(*nips)++] = argv[++i];
			continue;
		}
		argv[n++] = argv[i];
	}
	*argc = n;
	argv[n] = NULL;
	return 0;
}

int
cli_dns(int argc, char **argv)
{
	struct cli_admin ad;
	char *ips[DNS_IPS_MAX], **args;
	size_t nips = 0;
	bool is_check;
	int n = argc, rc;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	memcpy(args, argv, (size_t)argc * sizeof(*args));
	if (ips_take(&n, args, ips, &nips) < 0) {
		free(args);
		return CLI_EXIT_USAGE;
	}
	is_check = n >= 2 && strcmp(args[1], "check") == 0;
	rc = cli_admin_open(&ad, n - (is_check ? 1 : 0), args +
	    (is_check ? 1 : 0), usage);
	if (rc != 0) {
		free(args);
		return rc;
	}
	if (ad.argc != 1) {
		fprintf(stderr, "usage: %s\n", usage);
		rc = CLI_EXIT_USAGE;
	} else if (is_check) {
		struct cli_report rep = { 0 };

		if (ad.is_json)
			rep.items = json_array();
		rc = cli_dns_check_domain(&ad, ad.argv[0], ips, nips, &rep);
		if (rc == 0 && ad.is_json) {
			json_t *j = json_pack("{s:s,s:b,s:O}", "domain",
			    ad.argv[0], "ok", rep.fails == 0, "records",
			    rep.items);

			json_dumpf(j, stdout, JSON_INDENT(2));
			putchar('\n');
			json_decref(j);
		} else if (rc == 0) {
			printf("%d problem%s, %d warning%s\n", rep.fails,
			    rep.fails == 1 ? "" : "s", rep.warns,
			    rep.warns == 1 ? "" : "s");
		}
		if (rep.items != NULL)
			json_decref(rep.items);
		if (rc == 0 && rep.fails > 0)
			rc = CLI_EXIT_FAIL;
	} else {
		struct dns_plan p;

		rc = plan_make(&ad, &p, ad.argv[0], ips, nips, true);
		if (rc == 0) {
			rc = zone_print(&ad, &p);
			plan_free(&p);
		}
	}
	cli_admin_close(&ad);
	free(args);
	return rc;
}
