/*
 * Unit tests for the Public Suffix List (authn_psl.c) and DMARC
 * (authn_dmarc.c): the list's own algorithm (wildcards, exceptions, the
 * implicit "*"), the record parser of RFC 7489 §6.3/§6.4, the author
 * domain of §6.6.1, and the evaluation against a fake DNS table: the
 * DMARCbis tree walk, p/sp/np, relaxed and strict alignment, pct and t.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "authn/authn.h"
#include "lib/util.h"

static const char psl_text[] =
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "// a comment\n"
    "\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "test\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "blogspot.com   trailing words are ignored\n";

static struct authn_psl *
psl_make(void)
{
	return authn_psl_parse(psl_text, sizeof(psl_text) - 1);
}

static void
org_is(const struct authn_psl *p, const char *domain, const char *want)
{
	char out[256];
	int rc = authn_psl_org_domain(p, domain, out, sizeof(out));

	if (want == NULL) {
		assert_int_equal(rc, -1);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(out, want);
}

static void
test_psl_rules(void **state)
{
	struct authn_psl *p = psl_make();

	(void)state;
	assert_int_equal(authn_psl_rules(p), 10);
	org_is(p, "example.com", "example.com");
	org_is(p, "a.b.Example.COM", "example.com");
	org_is(p, "a.b.example.co.uk", "example.co.uk");
	org_is(p, "example.co.uk.", "example.co.uk");
	org_is(p, "co.uk", "co.uk");	/* a suffix is its own */
	org_is(p, "com", "com");
	/* Wildcard: every child of ck is a suffix... */
	org_is(p, "a.b.foo.ck", "b.foo.ck");
	/* ...but the exception's is not. */
	org_is(p, "www.ck", "www.ck");
	org_is(p, "a.www.ck", "www.ck");
	org_is(p, "x.city.kawasaki.jp", "city.kawasaki.jp");
	org_is(p, "x.y.other.kawasaki.jp", "y.other.kawasaki.jp");
	/* PRIVATE section rules count; the rest of the line is not. */
	org_is(p, "me.blogspot.com", "me.blogspot.com");
	/* The implicit "*": an unlisted TLD. */
	org_is(p, "mail.example.zz", "example.zz");
	org_is(p, "", NULL);
	org_is(p, "a..com", NULL);
	org_is(p, ".com", NULL);
	authn_psl_free(&p);
	/* No list at all: the TLD rule. */
	org_is(NULL, "a.b.example.co.uk", "co.uk");
}

static void
test_psl_real_file(void **state)
{
	char err[300];
	struct authn_psl *p = authn_psl_load(
	    "/usr/share/publicsuffix/public_suffix_list.dat", err,
	    sizeof(err));

	(void)state;
	assert_non_null(p);
	assert_true(authn_psl_rules(p) > 5000);
	org_is(p, "a.b.example.co.uk", "example.co.uk");
	org_is(p, "mail.example.com", "example.com");
	org_is(p, "x.www.ck", "www.ck");
	authn_psl_free(&p);
	assert_null(authn_psl_load("/nonexistent/psl.dat", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/psl.dat"));
}

static void
test_psl_bounds(void **state)
{
	/* A rule longer than a domain name is skipped, a line without a
	 * rule too; lines of dots and stars do not crash. */
	size_t n = 5000;
	char *text = xmalloc(n + 64);
	struct authn_psl *p;

	(void)state;
	memset(text, 'a', n);
	static const char tail[] = "\n*.\n!\n.\n..\n*\ncom\n";

	memcpy(text + n, tail, sizeof(tail) - 1);
	p = authn_psl_parse(text, n + sizeof(tail) - 1);
	org_is(p, "x.example.com", "example.com");
	free(text);
	authn_psl_free(&p);
}

/* ---- The record ------------------------------------------------------- */

static void
rec_parse(const char *text, struct authn_dmarc_record *rec)
{
	char err[128];

	assert_int_equal(authn_dmarc_record_parse(text, strlen(text), rec,
	    err, sizeof(err)), 0);
}

static void
test_record_tags(void **state)
{
	struct authn_dmarc_record r;
	char err[128];

	(void)state;
	rec_parse("v=DMARC1; p=reject; sp=quarantine; np=reject; pct=30; "
	    "adkim=s; aspf=s; rua=mailto:a@example.com,mailto:b@x.org!10m; "
	    "ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600; t=y; psd=n",
	    &r);
	assert_int_equal(r.p, AUTHN_DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, AUTHN_DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.np, AUTHN_DMARC_POLICY_REJECT);
	assert_int_equal(r.pct, 30);
	assert_true(r.is_adkim_strict);
	assert_true(r.is_aspf_strict);
	assert_int_equal(r.nrua, 2);
	assert_string_equal(r.rua[1], "mailto:b@x.org!10m");
	assert_int_equal(r.nruf, 1);
	assert_string_equal(r.fo, "1:d");
	assert_int_equal(r.ri, 3600);
	assert_true(r.is_testing);
	assert_int_equal(r.psd, 'n');

	/* Defaults; white space around tags; case of values. */
	rec_parse("v = DMARC1 ;p = Quarantine", &r);
	assert_int_equal(r.p, AUTHN_DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, AUTHN_DMARC_POLICY_UNSET);
	assert_int_equal(r.pct, 100);
	assert_false(r.is_adkim_strict);
	assert_string_equal(r.fo, "0");
	assert_int_equal(r.ri, 86400);
	assert_int_equal(r.psd, 'u');

	/* Bad values are ignored (§6.3), p= missing or bad is none. */
	rec_parse("v=DMARC1; p=bogus; pct=101; adkim=x; fo=2; ri=-1; "
	    "x-unknown=1; sp=", &r);
	assert_int_equal(r.p, AUTHN_DMARC_POLICY_NONE);
	assert_int_equal(r.pct, 100);
	assert_false(r.is_adkim_strict);
	assert_string_equal(r.fo, "0");
	assert_int_equal(r.sp, AUTHN_DMARC_POLICY_UNSET);
	rec_parse("v=DMARC1", &r);
	assert_int_equal(r.p, AUTHN_DMARC_POLICY_NONE);
	/* The first of a repeated tag counts. */
	rec_parse("v=DMARC1; p=reject; p=none", &r);
	assert_int_equal(r.p, AUTHN_DMARC_POLICY_REJECT);

	/* Not DMARC records. */
	assert_false(is_authn_dmarc_record("v=dmarc1; p=reject", 18));
	assert_false(is_authn_dmarc_record("p=reject; v=DMARC1", 18));
	assert_false(is_authn_dmarc_record("v=DMARC10; p=reject", 19));
	assert_false(is_authn_dmarc_record("v=spf1 -all", 11));
	assert_true(is_authn_dmarc_record("v=DMARC1;", 9));
	assert_int_equal(authn_dmarc_record_parse("v=spf1", 6, &r, err,
	    sizeof(err)), -1);
}

static void
test_record_bounds(void **state)
{
	struct authn_dmarc_record r;
	char err[128];
	char *big = xmalloc(AUTHN_DMARC_RECORD_MAX + 2);
	char many[2048];
	size_t n;

	(void)state;
	/* Longer than the bound: refused. */
	memset(big, ' ', AUTHN_DMARC_RECORD_MAX + 1);
	memcpy(big, "v=DMARC1;", 9);
	assert_int_equal(authn_dmarc_record_parse(big,
	    AUTHN_DMARC_RECORD_MAX + 1, &r, err, sizeof(err)), -1);
	free(big);
	/* More tags than the bound. */
	n = (size_t)snprintf(many, sizeof(many), "v=DMARC1");
	for (int i = 0; i < AUTHN_DMARC_TAGS_MAX + 1; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, ";x%d=1", i);
	assert_int_equal(authn_dmarc_record_parse(many, n, &r, err,
	    sizeof(err)), -1);
	/* rua keeps AUTHN_DMARC_URIS_MAX URIs, drops long ones. */
	rec_parse("v=DMARC1; p=none; rua=mailto:a@x,mailto:b@x,mailto:c@x,"
	    "mailto:d@x,mailto:e@x", &r);
	assert_int_equal(r.nrua, AUTHN_DMARC_URIS_MAX);
}

/* ---- The author domain ------------------------------------------------ */

static void
test_from_domain(void **state)
{
	char d[256], why[128];
	char *one[] = { "joe@Mail.Example.COM", NULL };
	char *two_same[] = { "a@example.com", "b@EXAMPLE.com", NULL };
	char *two_diff[] = { "a@example.com", "b@evil.test", NULL };
	char *none[] = { NULL };
	char *literal[] = { "a@[192.0.2.1]", NULL };
	char *utf8[] = { "a@b\xc3\xa9.example", NULL };

	(void)state;
	assert_int_equal(authn_dmarc_from_domain(0, one, 1, d, sizeof(d), why,
	    sizeof(why)), AUTHN_DMARC_FROM_OK);
	assert_string_equal(d, "mail.example.com");
	assert_int_equal(authn_dmarc_from_domain(0, two_same, 1, d, sizeof(d),
	    why, sizeof(why)), AUTHN_DMARC_FROM_OK);
	assert_string_equal(d, "example.com");
	assert_int_equal(authn_dmarc_from_domain(0, two_diff, 1, d, sizeof(d),
	    why, sizeof(why)), AUTHN_DMARC_FROM_AMBIGUOUS);
	assert_int_equal(authn_dmarc_from_domain(0, one, 2, d, sizeof(d), why,
	    sizeof(why)), AUTHN_DMARC_FROM_AMBIGUOUS);
	assert_int_equal(authn_dmarc_from_domain(0, none, 0, d, sizeof(d), why,
	    sizeof(why)), AUTHN_DMARC_FROM_ABSENT);
	assert_int_equal(authn_dmarc_from_domain(-1, NULL, 0, d, sizeof(d),
	    why, sizeof(why)), AUTHN_DMARC_FROM_INVALID);
	assert_int_equal(authn_dmarc_from_domain(0, literal, 1, d, sizeof(d),
	    why, sizeof(why)), AUTHN_DMARC_FROM_INVALID);
	assert_int_equal(authn_dmarc_from_domain(0, utf8, 1, d, sizeof(d),
	    why, sizeof(why)), AUTHN_DMARC_FROM_INVALID);
}

/* ---- Evaluation against a fake zone ----------------------------------- */

struct rr {
	enum authn_dns_type type;
	const char *name;
	const char *data;	/* "FAIL": a DNS error for the name */
};

struct zone {
	const struct rr *rrs;
	size_t n;
	unsigned queries;
	char asked[16][300];
};

static enum authn_dns_rc
zone_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct zone *z = arg;
	bool has_name = false;
	char **out = calloc(z->n + 1, sizeof(*out));
	size_t n = 0;

	if (z->queries < 16)
		snprintf(z->asked[z->queries], sizeof(z->asked[0]), "%s",
		    name);
	z->queries++;
	for (size_t i = 0; i < z->n; i++) {
		if (strcasecmp(z->rrs[i].name, name) != 0)
			continue;
		if (strcmp(z->rrs[i].data, "FAIL") == 0) {
			free(out);
			return AUTHN_DNS_FAIL;
		}
		has_name = true;
		if (z->rrs[i].type == type)
			out[n++] = xstrdup(z->rrs[i].data);
	}
	if (n == 0) {
		free(out);
		return has_name ? AUTHN_DNS_NODATA : AUTHN_DNS_NXDOMAIN;
	}
	*rrs_out = out;
	*n_out = n;
	return AUTHN_DNS_OK;
}

static const struct rr zone_rrs[] = {
	{ AUTHN_DNS_TXT, "_dmarc.example.com",
	    "v=DMARC1; p=reject; sp=quarantine; np=reject" },
	{ AUTHN_DNS_TXT, "_dmarc.example.com", "some other TXT" },
	{ AUTHN_DNS_A, "mail.example.com", "192.0.2.1" },
	{ AUTHN_DNS_TXT, "_dmarc.strict.test", "v=DMARC1; p=reject; "
	    "adkim=s; aspf=s" },
	{ AUTHN_DNS_TXT, "_dmarc.own.example.com", "v=DMARC1; p=none" },
	{ AUTHN_DNS_TXT, "_dmarc.pct.test", "v=DMARC1; p=reject; pct=0" },
	{ AUTHN_DNS_TXT, "_dmarc.testing.test", "v=DMARC1; p=quarantine; "
	    "t=y" },
	{ AUTHN_DNS_TXT, "_dmarc.two.test", "v=DMARC1; p=reject" },
	{ AUTHN_DNS_TXT, "_dmarc.two.test", "v=DMARC1; p=none" },
	{ AUTHN_DNS_TXT, "_dmarc.broken.test", "FAIL" },
	{ AUTHN_DNS_TXT, "_dmarc.example.co.uk", "v=DMARC1; p=reject" },
	{ AUTHN_DNS_TXT, "_dmarc.g.h.test", "v=DMARC1; p=quarantine" },
};

static struct zone zone = { zone_rrs, sizeof(zone_rrs) /
    sizeof(zone_rrs[0]), 0, { { 0 } } };

static struct authn_psl *test_psl;

static void
check(const char *from, enum authn_spf_result spf, const char *spf_domain,
    const char *dkim_d, unsigned sample, struct authn_dmarc_outcome *o)
{
	struct authn_dns dns = { zone_query, &zone };
	struct authn_dmarc_dkim k = { dkim_d, true, false };
	struct authn_dmarc_request req = {
		.from_domain = from,
		.spf = spf,
		.spf_domain = spf_domain,
		.dkim = dkim_d ? &k : NULL,
		.ndkim = dkim_d ? 1 : 0,
		.psl = test_psl,
		.sample = sample,
	};

	zone.queries = 0;
	authn_dmarc_check(&dns, &req, o);
}

static void
test_eval_policy(void **state)
{
	struct authn_dmarc_outcome o;
	char c[200];

	(void)state;
	/* Forged: SPF fails, no DKIM: fail, p=reject. */
	check("example.com", AUTHN_SPF_FAIL, "evil.test", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_REJECT);
	assert_string_equal(o.policy_domain, "example.com");
	authn_dmarc_comment(&o, c, sizeof(c));
	assert_string_equal(c, "p=reject dis=reject");
	/* Relaxed SPF alignment: a subdomain's pass counts. */
	check("example.com", AUTHN_SPF_PASS, "bounces.example.com", NULL, 0,
	    &o);
	assert_int_equal(o.result, AUTHN_DMARC_PASS);
	assert_true(o.is_spf_aligned);
	authn_dmarc_comment(&o, c, sizeof(c));
	assert_string_equal(c, "p=reject dis=none");
	/* A softfail or neutral is no pass. */
	check("example.com", AUTHN_SPF_SOFTFAIL, "example.com", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	/* DKIM alone, with SPF failing (forwarding). */
	check("example.com", AUTHN_SPF_FAIL, "forwarder.test",
	    "news.example.com", 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_PASS);
	assert_true(o.is_dkim_aligned);
	assert_string_equal(o.dkim_domain, "news.example.com");
	/* A subdomain takes sp= from the parent's record. */
	check("mail.example.com", AUTHN_SPF_FAIL, "evil.test", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	assert_string_equal(o.policy_domain, "example.com");
	assert_string_equal(o.policy_tag, "sp");
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_QUARANTINE);
	authn_dmarc_comment(&o, c, sizeof(c));
	assert_string_equal(c, "p=reject sp=quarantine dis=quarantine");
	/* ...and np= when the subdomain does not exist. */
	check("nowhere.example.com", AUTHN_SPF_NONE, NULL, NULL, 0, &o);
	assert_string_equal(o.policy_tag, "np");
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_REJECT);
	/* A subdomain with its own record: its p=. */
	check("own.example.com", AUTHN_SPF_FAIL, "evil.test", NULL, 0, &o);
	assert_string_equal(o.policy_domain, "own.example.com");
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_NONE);
}

static void
test_eval_alignment_modes(void **state)
{
	struct authn_dmarc_outcome o;

	(void)state;
	/* Strict: only the very domain. */
	check("strict.test", AUTHN_SPF_PASS, "mail.strict.test", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	check("strict.test", AUTHN_SPF_PASS, "STRICT.test", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_PASS);
	check("strict.test", AUTHN_SPF_NONE, NULL, "sub.strict.test", 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	check("strict.test", AUTHN_SPF_NONE, NULL, "strict.test", 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_PASS);
	/* Relaxed goes by the PSL: two registrations under co.uk do not
	 * align, two names of one do. */
	check("a.b.example.co.uk", AUTHN_SPF_PASS, "other.co.uk", NULL, 0,
	    &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	assert_string_equal(o.org_domain, "example.co.uk");
	assert_string_equal(o.policy_domain, "example.co.uk");
	check("a.b.example.co.uk", AUTHN_SPF_PASS, "x.example.co.uk", NULL, 0,
	    &o);
	assert_int_equal(o.result, AUTHN_DMARC_PASS);
}

/* A DNS error on an identity that would have aligned leaves the result
 * open (temperror, never a fail that refuses mail for good); one on an
 * identity that cannot align changes nothing. An l= signature with an
 * unsigned tail is no pass. */
static void
test_eval_temperror_and_unsigned_tail(void **state)
{
	struct authn_dns dns = { zone_query, &zone };
	struct authn_dmarc_dkim k = { "example.com", false, true };
	struct authn_dmarc_request req = {
		.from_domain = "example.com", .spf = AUTHN_SPF_FAIL,
		.spf_domain = "lists.test", .dkim = &k, .ndkim = 1,
		.psl = test_psl,
	};
	struct authn_dkim_verdict v = { 0 };
	struct authn_dmarc_dkim got[AUTHN_DMARC_DKIM_MAX];
	struct authn_dmarc_outcome o;

	(void)state;
	authn_dmarc_check(&dns, &req, &o);
	assert_int_equal(o.result, AUTHN_DMARC_TEMPERROR);
	k.domain = "evil.test";	/* could not align anyway */
	authn_dmarc_check(&dns, &req, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	k.is_temperror = false;
	req.spf = AUTHN_SPF_TEMPERROR;
	req.spf_domain = "bounces.example.com";
	authn_dmarc_check(&dns, &req, &o);
	assert_int_equal(o.result, AUTHN_DMARC_TEMPERROR);
	req.spf_domain = "evil.test";
	authn_dmarc_check(&dns, &req, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);

	v.n = 2;
	snprintf(v.sigs[0].domain, sizeof(v.sigs[0].domain), "example.com");
	v.sigs[0].result = AUTHN_DKIM_PASS;
	v.sigs[0].unsigned_tail = 120;
	snprintf(v.sigs[1].domain, sizeof(v.sigs[1].domain), "example.com");
	v.sigs[1].result = AUTHN_DKIM_TEMPERROR;
	assert_int_equal(authn_dmarc_dkim_from(&v, got, 4), 2);
	assert_false(got[0].is_pass);
	assert_false(got[0].is_temperror);
	assert_false(got[1].is_pass);
	assert_true(got[1].is_temperror);
	v.sigs[0].unsigned_tail = 0;
	assert_int_equal(authn_dmarc_dkim_from(&v, got, 4), 2);
	assert_true(got[0].is_pass);
}

static void
test_eval_walk(void **state)
{
	struct authn_dmarc_outcome o;

	(void)state;
	/* No record anywhere: none, after asking the name and each
	 * ancestor down to the TLD. */
	check("a.b.c.nothing.zz", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_NONE);
	assert_int_equal(zone.queries, 5);
	assert_string_equal(zone.asked[0], "_dmarc.a.b.c.nothing.zz");
	assert_string_equal(zone.asked[4], "_dmarc.zz");
	/* A long name: the name, then 7 labels and fewer: 8 questions. */
	check("1.2.3.4.5.6.7.8.9.10.g.h.test", AUTHN_SPF_FAIL, "x.zz", NULL,
	    0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	assert_string_equal(o.policy_domain, "g.h.test");
	assert_string_equal(zone.asked[1], "_dmarc.7.8.9.10.g.h.test");
	assert_true(zone.queries <= AUTHN_DMARC_WALK_MAX + 1);
	check("1.2.3.4.5.6.7.8.9.10.nothing.zz", AUTHN_SPF_FAIL, "x.zz",
	    NULL, 0, &o);
	assert_int_equal(zone.queries, AUTHN_DMARC_WALK_MAX);
	/* Two DMARC records at one name: no policy there (§6.6.3). */
	check("two.test", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_NONE);
	/* A DNS error: temperror. */
	check("broken.test", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_TEMPERROR);
	check("x.broken.test", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_TEMPERROR);
	/* No usable domain. */
	check("", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_PERMERROR);
	assert_int_equal(zone.queries, 0);
}

static void
test_eval_sampling(void **state)
{
	struct authn_dmarc_outcome o;

	(void)state;
	/* pct=0: every message outside: reject becomes quarantine. */
	check("pct.test", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.result, AUTHN_DMARC_FAIL);
	assert_true(o.is_sampled_out);
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_QUARANTINE);
	/* t=y: quarantine becomes none. */
	check("testing.test", AUTHN_SPF_FAIL, "x.zz", NULL, 0, &o);
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_NONE);
	/* pct=100 (default) takes every sample, 99 included. */
	check("example.com", AUTHN_SPF_FAIL, "x.zz", NULL, 99, &o);
	assert_int_equal(o.disposition, AUTHN_DMARC_POLICY_REJECT);
}

static int
setup(void **state)
{
	(void)state;
	test_psl = psl_make();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	authn_psl_free(&test_psl);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psl_rules),
		cmocka_unit_test(test_psl_real_file),
		cmocka_unit_test(test_psl_bounds),
		cmocka_unit_test(test_record_tags),
		cmocka_unit_test(test_record_bounds),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_eval_policy),
		cmocka_unit_test(test_eval_alignment_modes),
		cmocka_unit_test(test_eval_walk),
		cmocka_unit_test(test_eval_sampling),
		cmocka_unit_test(test_eval_temperror_and_unsigned_tail),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
