/*
 * Unit tests for SPF (authn_spf.c, authn_spf_macro.c) against a fake DNS
 * table: the examples of RFC 7208 Appendix A and §7.4, the limits of
 * §4.6.4, the results of §2.6 for each way a check can end, and the
 * Authentication-Results builder and stripper (authn_ar.c, RFC 8601).
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

/* One record of the fake zone: type, owner name, data. FAIL as data
 * makes every question about the name a DNS error. */
struct rr {
	enum authn_dns_type type;
	const char *name;
	const char *data;
};

struct zone {
	const struct rr *rrs;
	size_t n;
	unsigned queries;
};

static enum authn_dns_rc
zone_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct zone *z = arg;
	bool has_name = false;
	char **out = calloc(z->n + 1, sizeof(*out));
	size_t n = 0;

	z->queries++;
	assert_true(name[strlen(name) - 1] != '.');
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

#define A AUTHN_DNS_A
#define AAAA AUTHN_DNS_AAAA
#define MX AUTHN_DNS_MX
#define TXT AUTHN_DNS_TXT
#define PTR AUTHN_DNS_PTR

/* RFC 7208 Appendix A. */
static const struct rr appendix_a[] = {
	{ MX, "example.com", "10 mail-a.example.com" },
	{ MX, "example.com", "20 mail-b.example.com" },
	{ A, "example.com", "192.0.2.10" },
	{ A, "example.com", "192.0.2.11" },
	{ A, "amy.example.com", "192.0.2.65" },
	{ A, "bob.example.com", "192.0.2.66" },
	{ A, "mail-a.example.com", "192.0.2.129" },
	{ A, "mail-b.example.com", "192.0.2.130" },
	{ MX, "example.org", "10 mail-c.example.org" },
	{ A, "mail-c.example.org", "192.0.2.140" },
	{ PTR, "10.2.0.192.in-addr.arpa", "example.com" },
	{ PTR, "11.2.0.192.in-addr.arpa", "example.com" },
	{ PTR, "65.2.0.192.in-addr.arpa", "amy.example.com" },
	{ PTR, "66.2.0.192.in-addr.arpa", "bob.example.com" },
	{ PTR, "129.2.0.192.in-addr.arpa", "mail-a.example.com" },
	{ PTR, "130.2.0.192.in-addr.arpa", "mail-b.example.com" },
	{ PTR, "140.2.0.192.in-addr.arpa", "mail-c.example.org" },
};

/* Runs check_host for sender at ip with the zone base plus record as
 * the TXT of the sender's domain; returns the result. */
static enum authn_spf_result
check_with(const struct rr *base, size_t nbase, const char *record,
    const char *ip, const char *sender, struct authn_spf_outcome *o_out)
{
	struct rr *rrs = calloc(nbase + 1, sizeof(*rrs));
	struct zone z = { rrs, nbase, 0 };
	struct authn_dns dns = { zone_query, &z };
	struct authn_spf_request req = {
		.ip = ip, .helo = "helo.example.net", .sender = sender,
		.receiver = "mx.example.test", .now = 1700000000,
	};
	struct authn_spf_outcome o;
	enum authn_spf_result r;

	if (nbase > 0)	/* base may be NULL: memcpy's pointers may not */
		memcpy(rrs, base, nbase * sizeof(*rrs));
	if (record != NULL) {
		const char *at = strrchr(sender, '@');

		rrs[nbase].type = TXT;
		rrs[nbase].name = at ? at + 1 : sender;
		rrs[nbase].data = record;
		z.n++;
	}
	authn_spf_check_mailfrom(&dns, &req, &o);
	r = o.result;
	if (o_out != NULL)
		*o_out = o;
	else
		authn_spf_outcome_deinit(&o);
	free(rrs);
	return r;
}

#define PASS AUTHN_SPF_PASS
#define FAIL AUTHN_SPF_FAIL
#define SOFTFAIL AUTHN_SPF_SOFTFAIL
#define NEUTRAL AUTHN_SPF_NEUTRAL
#define NONE AUTHN_SPF_NONE
#define TEMPERROR AUTHN_SPF_TEMPERROR
#define PERMERROR AUTHN_SPF_PERMERROR

static void
expect(const char *record, const char *ip, enum authn_spf_result want)
{
	enum authn_spf_result got = check_with(appendix_a,
	    ARRAY_LEN(appendix_a), record, ip, "x@example.com", NULL);

	if (got != want)
		fail_msg("\"%s\" from %s: %s, want %s", record, ip,
		    authn_spf_result_name(got), authn_spf_result_name(want));
}

static void
test_authn_spf_appendix_a1_simple_examples(void **state)
{
	(void)state;
	expect("v=spf1 +all", "192.0.2.1", PASS);
	expect("v=spf1 a -all", "192.0.2.10", PASS);
	expect("v=spf1 a -all", "192.0.2.11", PASS);
	expect("v=spf1 a -all", "192.0.2.12", FAIL);
	expect("v=spf1 a:example.org -all", "192.0.2.10", FAIL);
	expect("v=spf1 mx -all", "192.0.2.129", PASS);
	expect("v=spf1 mx -all", "192.0.2.130", PASS);
	expect("v=spf1 mx -all", "192.0.2.10", FAIL);
	expect("v=spf1 mx:example.org -all", "192.0.2.140", PASS);
	expect("v=spf1 mx:example.org -all", "192.0.2.129", FAIL);
	expect("v=spf1 mx mx:example.org -all", "192.0.2.129", PASS);
	expect("v=spf1 mx mx:example.org -all", "192.0.2.140", PASS);
	expect("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.131", PASS);
	expect("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.143", PASS);
	expect("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.132", FAIL);
	expect("v=spf1 ptr -all", "192.0.2.10", PASS);
	expect("v=spf1 ptr -all", "192.0.2.65", PASS);
	expect("v=spf1 ptr -all", "192.0.2.130", PASS);
	expect("v=spf1 ptr -all", "192.0.2.140", FAIL);
	expect("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.128", PASS);
	expect("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.143", PASS);
	expect("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.144", FAIL);
	expect("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.127", FAIL);
}

static void
test_authn_spf_qualifiers_and_default_neutral(void **state)
{
	(void)state;
	expect("v=spf1 -all", "192.0.2.1", FAIL);
	expect("v=spf1 ~all", "192.0.2.1", SOFTFAIL);
	expect("v=spf1 ?all", "192.0.2.1", NEUTRAL);
	expect("v=spf1 all", "192.0.2.1", PASS);
	/* §4.7: nothing matches and no redirect: neutral. */
	expect("v=spf1 ip4:10.0.0.1", "192.0.2.1", NEUTRAL);
	expect("v=spf1", "192.0.2.1", NEUTRAL);
	/* Names and the version tag in any case (RFC 5234 strings). */
	expect("V=SPF1 IP4:192.0.2.1 -ALL", "192.0.2.1", PASS);
	/* Several spaces between terms, and after the last. */
	expect("v=spf1   ip4:192.0.2.1   -all  ", "192.0.2.1", PASS);
}

static void
test_authn_spf_ip6_and_ipv4_mapped_client(void **state)
{
	(void)state;
	expect("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::1", PASS);
	expect("v=spf1 ip6:2001:db8::/32 -all", "2001:db9::1", FAIL);
	expect("v=spf1 ip6:2001:db8::1 -all", "2001:db8::1", PASS);
	/* An IPv4 client never matches ip6 (and the reverse). */
	expect("v=spf1 ip6:::/0 -all", "192.0.2.1", FAIL);
	expect("v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::1", FAIL);
	/* §5: an IPv4-mapped client is checked as IPv4. */
	expect("v=spf1 ip4:192.0.2.1 -all", "::ffff:192.0.2.1", PASS);
	/* a with an IPv6 length: "//64". */
	{
		static const struct rr z[] = {
			{ AAAA, "example.com", "2001:db8:1:2::5" },
			{ A, "example.com", "192.0.2.10" },
		};

		assert_int_equal(check_with(z, ARRAY_LEN(z),
		    "v=spf1 a//64 -all", "2001:db8:1:2::99", "x@example.com",
		    NULL), PASS);
		assert_int_equal(check_with(z, ARRAY_LEN(z),
		    "v=spf1 a/24//64 -all", "192.0.2.77", "x@example.com",
		    NULL), PASS);
		assert_int_equal(check_with(z, ARRAY_LEN(z),
		    "v=spf1 a//64 -all", "2001:db8:1:3::99",
		    "x@example.com", NULL), FAIL);
	}
}

static void
test_authn_spf_syntax_error_anywhere_is_permerror(void **state)
{
	(void)state;
	/* §4.6: the whole record is parsed before any term counts. */
	expect("v=spf1 +all foo", "192.0.2.1", PERMERROR);
	expect("v=spf1 +all foo:bar.com", "192.0.2.1", PERMERROR);
	expect("v=spf1 ip4:192.0.2.1/33 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 ip4:192.0.2.1/032 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 ip4:192.0.2 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 ip6:2001:db8::/129 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a//129 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a/33 -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a:foo -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a: -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 include -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 exists -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 all:example.com", "192.0.2.1", PERMERROR);
	expect("v=spf1 -redirect=example.org", "192.0.2.1", PERMERROR);
	expect("v=spf1 redirect=example.org redirect=example.org",
	    "192.0.2.1", PERMERROR);
	expect("v=spf1 exp=a.example.org exp=b.example.org -all",
	    "192.0.2.1", PERMERROR);
	expect("v=spf1 exp= -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a:%{x}.example.com -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a:%{d0}.example.com -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a:%{c}.example.com -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 a:50%.example.com -all", "192.0.2.1", PERMERROR);
	expect("v=spf1 ip4:192.0.2.1\t-all", "192.0.2.1", PERMERROR);
	/* Unknown modifiers are ignored, their syntax is not. */
	expect("v=spf1 foo=bar.%{d} ip4:192.0.2.1 -all", "192.0.2.1", PASS);
	expect("v=spf1 foo=%{z} ip4:192.0.2.1 -all", "192.0.2.1", PERMERROR);
}

static void
test_authn_spf_record_selection(void **state)
{
	static const struct rr two[] = {
		{ TXT, "example.com", "v=spf1 -all" },
		{ TXT, "example.com", "v=spf1 +all" },
	};
	static const struct rr other[] = {
		{ TXT, "example.com", "google-site-verification=x" },
		{ TXT, "example.com", "v=spf10 +all" },
	};
	static const struct rr broken[] = {
		{ TXT, "example.com", "FAIL" },
	};
	struct authn_spf_outcome o;

	(void)state;
	/* §4.5: two records, permerror; none, none. */
	assert_int_equal(check_with(two, 2, NULL, "192.0.2.1",
	    "x@example.com", NULL), PERMERROR);
	assert_int_equal(check_with(other, 2, NULL, "192.0.2.1",
	    "x@example.com", NULL), NONE);
	assert_int_equal(check_with(NULL, 0, NULL, "192.0.2.1",
	    "x@example.com", &o), NONE);
	assert_non_null(strstr(o.reason, "no SPF record"));
	authn_spf_outcome_deinit(&o);
	/* §4.4: a DNS error, temperror. */
	assert_int_equal(check_with(broken, 1, NULL, "192.0.2.1",
	    "x@example.com", NULL), TEMPERROR);
	/* §4.3: no usable domain, none without asking. */
	assert_int_equal(check_with(NULL, 0, NULL, "192.0.2.1", "x@com",
	    NULL), NONE);
	assert_int_equal(check_with(NULL, 0, NULL, "192.0.2.1",
	    "x@a..example.com", NULL), NONE);
}

static void
test_authn_spf_include_results(void **state)
{
	static const struct rr z[] = {
		{ TXT, "pass.example.org", "v=spf1 +all" },
		{ TXT, "fail.example.org", "v=spf1 -all" },
		{ TXT, "soft.example.org", "v=spf1 ~all" },
		{ TXT, "temp.example.org", "FAIL" },
		{ TXT, "perm.example.org", "v=spf1 bogus" },
		{ TXT, "norecord.example.org", "not spf" },
	};
	const char *s = "x@example.com";

	(void)state;
	/* §5.2: only the target's pass matches. */
	assert_int_equal(check_with(z, 6, "v=spf1 include:pass.example.org "
	    "-all", "192.0.2.1", s, NULL), PASS);
	assert_int_equal(check_with(z, 6, "v=spf1 include:fail.example.org "
	    "-all", "192.0.2.1", s, NULL), FAIL);
	assert_int_equal(check_with(z, 6, "v=spf1 include:soft.example.org "
	    "?all", "192.0.2.1", s, NULL), NEUTRAL);
	assert_int_equal(check_with(z, 6, "v=spf1 include:temp.example.org "
	    "-all", "192.0.2.1", s, NULL), TEMPERROR);
	assert_int_equal(check_with(z, 6, "v=spf1 include:perm.example.org "
	    "-all", "192.0.2.1", s, NULL), PERMERROR);
	assert_int_equal(check_with(z, 6, "v=spf1 "
	    "include:norecord.example.org -all", "192.0.2.1", s, NULL),
	    PERMERROR);
	assert_int_equal(check_with(z, 6, "v=spf1 include:nx.example.org "
	    "-all", "192.0.2.1", s, NULL), PERMERROR);
	/* -include: a matching include takes the qualifier. */
	assert_int_equal(check_with(z, 6, "v=spf1 -include:pass.example.org "
	    "+all", "192.0.2.1", s, NULL), FAIL);
}

static void
test_authn_spf_redirect(void **state)
{
	static const struct rr z[] = {
		{ TXT, "target.example.org",
		    "v=spf1 ip4:192.0.2.1 -all exp=why.example.org" },
		{ TXT, "why.example.org", "%{i} may not send for %{d}" },
		{ TXT, "ours.example.org", "ours" },
		{ TXT, "empty.example.org", "nothing here" },
	};
	struct authn_spf_outcome o;
	const char *s = "x@example.com";

	(void)state;
	assert_int_equal(check_with(z, 4, "v=spf1 "
	    "redirect=target.example.org", "192.0.2.1", s, NULL), PASS);
	/* §6.2: the target's exp=, never ours; %{d} is the target. */
	assert_int_equal(check_with(z, 4, "v=spf1 "
	    "redirect=target.example.org exp=ours.example.org", "192.0.2.9",
	    s, &o), FAIL);
	assert_string_equal(o.explanation,
	    "192.0.2.9 may not send for target.example.org");
	authn_spf_outcome_deinit(&o);
	/* §6.1: a target without a record is a permerror. */
	assert_int_equal(check_with(z, 4, "v=spf1 "
	    "redirect=empty.example.org", "192.0.2.1", s, NULL), PERMERROR);
	assert_int_equal(check_with(z, 4, "v=spf1 redirect=nx.example.org",
	    "192.0.2.1", s, NULL), PERMERROR);
	/* A matching mechanism ends the check before redirect, wherever
	 * the modifier stands. */
	assert_int_equal(check_with(z, 4, "v=spf1 redirect=nx.example.org "
	    "+all", "192.0.2.1", s, NULL), PASS);
}

static void
test_authn_spf_explanation(void **state)
{
	static const struct rr z[] = {
		{ TXT, "explain.example.com",
		    "%{S} from %{c} (%{i}) rejected by %{r} at %{t}; see "
		    "http://%{d}/why?s=%{S}%_ok" },
		{ TXT, "two.example.com", "one" },
		{ TXT, "two.example.com", "two" },
		{ TXT, "bad.example.com", "%{x}" },
	};
	struct authn_spf_outcome o;

	(void)state;
	assert_int_equal(check_with(z, 4, "v=spf1 -all "
	    "exp=explain.%{d}", "192.0.2.3", "a=b@example.com", &o), FAIL);
	assert_string_equal(o.explanation, "a%3Db%40example.com from "
	    "192.0.2.3 (192.0.2.3) rejected by mx.example.test at "
	    "1700000000; see http://example.com/why?s="
	    "a%3Db%40example.com ok");
	authn_spf_outcome_deinit(&o);
	/* §6.2: two records, a bad string, no record: no explanation,
	 * and the result stays fail. */
	assert_int_equal(check_with(z, 4, "v=spf1 -all exp=two.example.com",
	    "192.0.2.3", "x@example.com", &o), FAIL);
	assert_null(o.explanation);
	authn_spf_outcome_deinit(&o);
	assert_int_equal(check_with(z, 4, "v=spf1 -all exp=bad.example.com",
	    "192.0.2.3", "x@example.com", &o), FAIL);
	assert_null(o.explanation);
	authn_spf_outcome_deinit(&o);
	assert_int_equal(check_with(z, 4, "v=spf1 -all exp=nx.example.com",
	    "192.0.2.3", "x@example.com", &o), FAIL);
	assert_null(o.explanation);
	authn_spf_outcome_deinit(&o);
	/* Only a fail is explained. */
	assert_int_equal(check_with(z, 4, "v=spf1 ~all "
	    "exp=explain.example.com", "192.0.2.3", "x@example.com", &o),
	    SOFTFAIL);
	assert_null(o.explanation);
	authn_spf_outcome_deinit(&o);
}

static void
test_authn_spf_lookup_limit(void **state)
{
	struct rr z[16];
	char names[16][32];
	struct authn_spf_outcome o;

	(void)state;
	/* A chain of includes: e0 -> e1 -> ... each "include:eN+1 ?all",
	 * the last "+all". Ten lookups pass, eleven are a permerror. */
	for (int i = 0; i < 12; i++) {
		snprintf(names[i], sizeof(names[i]), "e%d.example.org", i);
		z[i].type = TXT;
		z[i].name = names[i];
	}
	{
		static char recs[12][64];

		for (int i = 0; i < 12; i++) {
			snprintf(recs[i], sizeof(recs[i]), "v=spf1 "
			    "include:e%d.example.org ?all", i + 1);
			z[i].data = recs[i];
		}
		/* e10 passes: e0's record reaches it through 10
		 * includes (e0's TXT is the check's own, not counted). */
		z[10].data = "v=spf1 +all";
		assert_int_equal(check_with(z, 11, NULL, "192.0.2.1",
		    "x@e0.example.org", &o), PASS);
		assert_int_equal(o.lookups, 10);
		authn_spf_outcome_deinit(&o);
		z[10].data = recs[10];
		z[11].data = "v=spf1 +all";
		assert_int_equal(check_with(z, 12, NULL, "192.0.2.1",
		    "x@e0.example.org", &o), PERMERROR);
		assert_non_null(strstr(o.reason, "more than 10 DNS lookups"));
		authn_spf_outcome_deinit(&o);
	}
	/* ip4 and all never count. */
	expect("v=spf1 a a a a a a a a a a ip4:192.0.2.1 -all", "192.0.2.1",
	    PASS);
	expect("v=spf1 a a a a a a a a a a a ip4:192.0.2.1 -all",
	    "192.0.2.1", PERMERROR);
	/* A loop of redirects ends at the limit, not in a crash. */
	{
		static const struct rr loop[] = {
			{ TXT, "loop.example.org",
			    "v=spf1 redirect=loop.example.org" },
		};

		assert_int_equal(check_with(loop, 1, NULL, "192.0.2.1",
		    "x@loop.example.org", NULL), PERMERROR);
	}
}

static void
test_authn_spf_void_lookup_limit(void **state)
{
	(void)state;
	/* §4.6.4: two void lookups are fine, a third is a permerror. */
	expect("v=spf1 a:nx1.example.com a:nx2.example.com -all",
	    "192.0.2.1", FAIL);
	expect("v=spf1 a:nx1.example.com a:nx2.example.com "
	    "a:nx3.example.com -all", "192.0.2.1", PERMERROR);
	/* A name without A records is void too (NODATA). */
	expect("v=spf1 a:example.org mx:amy.example.com -all", "192.0.2.1",
	    FAIL);
	expect("v=spf1 a:example.org mx:amy.example.com "
	    "exists:x.example.org -all", "192.0.2.1", PERMERROR);
}

static void
test_authn_spf_mx_limit_and_errors(void **state)
{
	struct rr z[12];
	static char mx[11][40];
	struct authn_spf_outcome o;

	(void)state;
	for (int i = 0; i < 11; i++) {
		snprintf(mx[i], sizeof(mx[i]), "%d mx%d.example.com", i, i);
		z[i].type = MX;
		z[i].name = "many.example.com";
		z[i].data = mx[i];
	}
	z[11].type = A;
	z[11].name = "mx1.example.com";
	z[11].data = "192.0.2.1";
	/* §4.6.4: more than 10 MX names is a permerror, even when the
	 * first one would match. */
	assert_int_equal(check_with(z, 12, "v=spf1 mx:many.example.com "
	    "-all", "192.0.2.1", "x@example.com", &o), PERMERROR);
	authn_spf_outcome_deinit(&o);
	/* Ten are fine. */
	assert_int_equal(check_with(z + 1, 11, "v=spf1 mx:many.example.com "
	    "-all", "192.0.2.1", "x@example.com", NULL), PASS);
	/* A DNS error in a mechanism is a temperror (§5). */
	{
		static const struct rr t[] = {
			{ A, "broken.example.com", "FAIL" },
			{ PTR, "1.2.0.192.in-addr.arpa", "FAIL" },
		};

		assert_int_equal(check_with(t, 1, "v=spf1 "
		    "a:broken.example.com -all", "192.0.2.1",
		    "x@example.com", NULL), TEMPERROR);
		/* ... but not in ptr (§5.5): no match. */
		assert_int_equal(check_with(t, 1, "v=spf1 "
		    "ptr:broken.example.com -all", "192.0.2.1",
		    "x@example.com", NULL), FAIL);
	}
}

static void
test_authn_spf_appendix_a3_dnsbl_style(void **state)
{
	static const struct rr z[] = {
		{ TXT, "example.com", "v=spf1 mx "
		    "include:mobile-users._spf.%{d} "
		    "include:remote-users._spf.%{d} -all" },
		{ TXT, "mobile-users._spf.example.com",
		    "v=spf1 exists:%{l1r+}.%{d}" },
		{ TXT, "remote-users._spf.example.com",
		    "v=spf1 exists:%{ir}.%{l1r+}.%{d}" },
		{ A, "mary.mobile-users._spf.example.com", "127.0.0.2" },
		{ A, "fred.mobile-users._spf.example.com", "127.0.0.2" },
		{ A, "15.15.168.192.joel.remote-users._spf.example.com",
		    "127.0.0.2" },
		{ A, "16.15.168.192.joel.remote-users._spf.example.com",
		    "127.0.0.2" },
		{ MX, "example.com", "10 mail-a.example.com" },
		{ A, "mail-a.example.com", "192.0.2.129" },
	};

	(void)state;
	assert_int_equal(check_with(z, ARRAY_LEN(z), NULL, "198.51.100.1",
	    "mary@example.com", NULL), PASS);
	/* %{l1r+}: "fred+bulk" split at "+", reversed, the last part. */
	assert_int_equal(check_with(z, ARRAY_LEN(z), NULL, "198.51.100.1",
	    "fred+bulk@example.com", NULL), PASS);
	assert_int_equal(check_with(z, ARRAY_LEN(z), NULL, "192.168.15.15",
	    "joel@example.com", NULL), PASS);
	assert_int_equal(check_with(z, ARRAY_LEN(z), NULL, "192.168.15.17",
	    "joel@example.com", NULL), FAIL);
	assert_int_equal(check_with(z, ARRAY_LEN(z), NULL, "192.0.2.129",
	    "anyone@example.com", NULL), PASS);
}

static void
test_authn_spf_appendix_a4_multiple_requirements(void **state)
{
	struct rr z[ARRAY_LEN(appendix_a) + 2];

	(void)state;
	memcpy(z, appendix_a, sizeof(appendix_a));
	z[ARRAY_LEN(appendix_a)] = (struct rr){ TXT, "ip4._spf.example.com",
	    "v=spf1 -ip4:192.0.2.0/24 +all" };
	z[ARRAY_LEN(appendix_a) + 1] = (struct rr){ TXT,
	    "ptr._spf.example.com", "v=spf1 -ptr:example.com +all" };
	/* Pass only from 192.0.2.0/24 with a PTR in example.com. */
#define A4 "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all"
	assert_int_equal(check_with(z, ARRAY_LEN(z), A4, "192.0.2.10",
	    "x@example.com", NULL), PASS);
	assert_int_equal(check_with(z, ARRAY_LEN(z), A4, "192.0.2.140",
	    "x@example.com", NULL), FAIL);
	assert_int_equal(check_with(z, ARRAY_LEN(z), A4, "198.51.100.1",
	    "x@example.com", NULL), FAIL);
#undef A4
}

/* Expands spec as §7.4 does: sender strong-bad@email.example.com,
 * domain email.example.com, PTR of the client mx.example.org. */
static void
expect_macro(const char *ip, const char *spec, const char *want)
{
	static const struct rr z[] = {
		{ PTR, "3.2.0.192.in-addr.arpa", "mx.example.org" },
		{ A, "mx.example.org", "192.0.2.3" },
	};
	struct zone zn = { z, ARRAY_LEN(z), 0 };
	struct authn_dns dns = { zone_query, &zn };
	struct authn_spf_request req = {
		.ip = ip, .helo = "mx.example.org", .receiver = "us.example",
		.sender = "strong-bad@email.example.com", .now = 1,
	};
	char *got = authn_spf_macro_expand(&dns, &req, "email.example.com",
	    req.sender, spec, strlen(spec), true);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s expanded to %s, want an error", spec, got);
		return;
	}
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: %s, want %s", spec, got ? got : "(error)", want);
	free(got);
}

static void
test_authn_spf_macro_examples_of_7_4(void **state)
{
	const char *v4 = "192.0.2.3";

	(void)state;
	expect_macro(v4, "%{s}", "strong-bad@email.example.com");
	expect_macro(v4, "%{o}", "email.example.com");
	expect_macro(v4, "%{d}", "email.example.com");
	expect_macro(v4, "%{d4}", "email.example.com");
	expect_macro(v4, "%{d3}", "email.example.com");
	expect_macro(v4, "%{d2}", "example.com");
	expect_macro(v4, "%{d1}", "com");
	expect_macro(v4, "%{dr}", "com.example.email");
	expect_macro(v4, "%{d2r}", "example.email");
	expect_macro(v4, "%{l}", "strong-bad");
	expect_macro(v4, "%{l-}", "strong.bad");
	expect_macro(v4, "%{lr}", "strong-bad");
	expect_macro(v4, "%{lr-}", "bad.strong");
	expect_macro(v4, "%{l1r-}", "strong");
	expect_macro(v4, "%{ir}.%{v}._spf.%{d2}",
	    "3.2.0.192.in-addr._spf.example.com");
	expect_macro(v4, "%{lr-}.lp._spf.%{d2}",
	    "bad.strong.lp._spf.example.com");
	expect_macro(v4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
	    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expect_macro(v4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
	    "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expect_macro(v4, "%{d2}.trusted-domains.example.net",
	    "example.com.trusted-domains.example.net");
	expect_macro("2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
	    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	    "ip6._spf.example.com");
	/* The rest of §7.3. */
	expect_macro(v4, "%{p}", "mx.example.org");
	expect_macro("192.0.2.4", "%{p}", "unknown");
	expect_macro(v4, "%{h} %{c} %{r} %{t}",
	    "mx.example.org 192.0.2.3 us.example 1");
	expect_macro("2001:db8::cb01", "%{c}", "2001:db8::cb01");
	expect_macro(v4, "%%%_%-", "% %20");
	expect_macro(v4, "%{L}", "strong-bad");
	expect_macro(v4, "%{S}", "strong-bad%40email.example.com");
	expect_macro(v4, "%{d200}", "email.example.com");
	/* Malformed. */
	expect_macro(v4, "%{d0}", NULL);
	expect_macro(v4, "%{x}", NULL);
	expect_macro(v4, "%{d", NULL);
	expect_macro(v4, "%", NULL);
	expect_macro(v4, "%a", NULL);
	expect_macro(v4, "%{d2x}", NULL);
	expect_macro(v4, "a\x01", NULL);
}

static void
test_authn_spf_long_expansion_is_cut_to_253_from_the_left(void **state)
{
	char sender[300], b60[61], want[300];
	struct rr z[1];
	struct authn_spf_outcome o;

	(void)state;
	/* A local part of four 60-byte labels (243 bytes), twice: 501
	 * bytes, cut whole label by label from the left (§4.8) to 197. */
	memset(b60, 'b', 60);
	b60[60] = '\0';
	snprintf(sender, sizeof(sender), "%.60s.%s.%s.%s@example.com",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    b60, b60, b60);
	snprintf(want, sizeof(want), "%s.%s.%s.x.example.org", b60, b60, b60);
	z[0] = (struct rr){ A, want, "192.0.2.1" };
	assert_int_equal(check_with(z, 1, "v=spf1 exists:%{l}.%{l}.x.example.org "
	    "-all", "192.0.2.1", sender, &o), PASS);
	authn_spf_outcome_deinit(&o);
}

static void
test_authn_spf_helo_and_null_sender(void **state)
{
	static const struct rr z[] = {
		{ TXT, "mx.example.net", "v=spf1 exists:%{l}.%{d} -all" },
		{ A, "postmaster.mx.example.net", "127.0.0.2" },
	};
	struct zone zn = { z, ARRAY_LEN(z), 0 };
	struct authn_dns dns = { zone_query, &zn };
	struct authn_spf_request req = {
		.ip = "192.0.2.1", .helo = "mx.example.net", .sender = "",
		.receiver = "us.example",
	};
	struct authn_spf_outcome o;

	(void)state;
	/* §2.3, §2.4: postmaster@HELO is the sender of both. */
	authn_spf_check_helo(&dns, &req, &o);
	assert_int_equal(o.result, PASS);
	assert_string_equal(o.sender, "postmaster@mx.example.net");
	authn_spf_outcome_deinit(&o);
	authn_spf_check_mailfrom(&dns, &req, &o);
	assert_int_equal(o.result, PASS);
	assert_string_equal(o.domain, "mx.example.net");
	authn_spf_outcome_deinit(&o);
	/* A HELO that is no domain name: none, no question asked. */
	zn.queries = 0;
	req.helo = "[192.0.2.1]";
	authn_spf_check_helo(&dns, &req, &o);
	assert_int_equal(o.result, NONE);
	authn_spf_outcome_deinit(&o);
	req.helo = "localhost";
	authn_spf_check_helo(&dns, &req, &o);
	assert_int_equal(o.result, NONE);
	authn_spf_outcome_deinit(&o);
	assert_int_equal(zn.queries, 0);
	/* §4.3: a sender without a local part is postmaster. */
	req.helo = "mx.example.net";
	req.sender = "@mx.example.net";
	authn_spf_check_mailfrom(&dns, &req, &o);
	assert_int_equal(o.result, PASS);
	authn_spf_outcome_deinit(&o);
}

static void
test_authn_spf_record_bounds(void **state)
{
	char *big = malloc(AUTHN_SPF_RECORD_MAX + 100), err[160];
	size_t n;

	(void)state;
	strcpy(big, "v=spf1");
	n = strlen(big);
	while (n < AUTHN_SPF_RECORD_MAX + 10) {
		memcpy(big + n, " ip4:192.0.2.1", 14);
		n += 14;
	}
	big[n] = '\0';
	assert_int_equal(authn_spf_record_check(big, n, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "longer than"));
	/* 257 terms in a short record: too many. */
	strcpy(big, "v=spf1");
	for (int i = 0; i < AUTHN_SPF_TERMS_MAX + 1; i++)
		strcat(big, " a");
	assert_int_equal(authn_spf_record_check(big, strlen(big), err,
	    sizeof(err)), -1);
	assert_int_equal(authn_spf_record_check("v=spf1 -all", 11, err,
	    sizeof(err)), 0);
	assert_false(is_authn_spf_record("v=spf1x", 7));
	assert_true(is_authn_spf_record("v=spf1", 6));
	free(big);
}

/* ---- Authentication-Results ------------------------------------------- */

static void
test_authn_ar_field_shape(void **state)
{
	struct authn_ar *ar = authn_ar_new("mx.example.test");
	char *f;

	(void)state;
	f = authn_ar_field(ar);
	assert_string_equal(f, "Authentication-Results: mx.example.test; "
	    "none\r\n");
	free(f);
	authn_ar_add(ar, "spf", "pass", NULL, "smtp.mailfrom",
	    "alice@example.com");
	authn_ar_add(ar, "spf", "none", "no record", "smtp.helo",
	    "mx.example.net");
	authn_ar_add(ar, "spf", "fail", "a (comment) \\", "smtp.mailfrom",
	    "\"odd local\"@example.com");
	f = authn_ar_field(ar);
	assert_string_equal(f, "Authentication-Results: mx.example.test;\r\n"
	    "\tspf=pass smtp.mailfrom=alice@example.com;\r\n"
	    "\tspf=none (no record) smtp.helo=mx.example.net;\r\n"
	    "\tspf=fail (a \\(comment\\) \\\\) "
	    "smtp.mailfrom=\"\\\"odd local\\\"@example.com\"\r\n");
	free(f);
	authn_ar_free(&ar);
	assert_null(ar);
}

static void
test_authn_ar_strip_removes_only_our_id(void **state)
{
	char h[] =
	    "Received: from x\r\n"
	    "Authentication-Results: mx.example.test; spf=pass\r\n"
	    "Subject: hi\r\n"
	    "authentication-results:   (c) MX.Example.Test.;\r\n"
	    "\tdkim=pass header.d=x\r\n"
	    "Authentication-Results: \"mx.example.test\"; none\r\n"
	    "Authentication-Results: other.example; spf=fail\r\n"
	    "Authentication-Results: mx.example.test.evil; spf=pass\r\n"
	    "X-Authentication-Results: mx.example.test; spf=pass\r\n"
	    "\r\n";
	size_t removed, n;

	(void)state;
	n = authn_ar_strip(h, strlen(h), "mx.example.test", &removed);
	assert_int_equal(removed, 3);
	h[n] = '\0';
	assert_string_equal(h,
	    "Received: from x\r\n"
	    "Subject: hi\r\n"
	    "Authentication-Results: other.example; spf=fail\r\n"
	    "Authentication-Results: mx.example.test.evil; spf=pass\r\n"
	    "X-Authentication-Results: mx.example.test; spf=pass\r\n"
	    "\r\n");
}

/* Review: "Authentication-Results :" (white space before the colon,
 * obs-optional of RFC 5322 §4.5.8) is the same field to a lenient
 * reader (SpamAssassin's header parser takes \s* before the colon); a
 * forged one escaped the stripping. */
static void
test_authn_ar_strip_white_space_before_colon(void **state)
{
	char h[] =
	    "Authentication-Results : mx.example.test; spf=pass\r\n"
	    "Subject: hi\r\n"
	    "AUTHENTICATION-RESULTS\t \t: mx.example.test;\r\n"
	    " dkim=pass header.d=bank.test\r\n"
	    "Authentication-Results-X: mx.example.test; spf=pass\r\n"
	    "Authentication-Results mx.example.test; spf=pass\r\n"
	    "\r\n";
	size_t removed, n;

	(void)state;
	n = authn_ar_strip(h, strlen(h), "mx.example.test", &removed);
	assert_int_equal(removed, 2);
	h[n] = '\0';
	assert_string_equal(h,
	    "Subject: hi\r\n"
	    "Authentication-Results-X: mx.example.test; spf=pass\r\n"
	    "Authentication-Results mx.example.test; spf=pass\r\n"
	    "\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authn_spf_appendix_a1_simple_examples),
		cmocka_unit_test(test_authn_spf_qualifiers_and_default_neutral),
		cmocka_unit_test(test_authn_spf_ip6_and_ipv4_mapped_client),
		cmocka_unit_test(
		    test_authn_spf_syntax_error_anywhere_is_permerror),
		cmocka_unit_test(test_authn_spf_record_selection),
		cmocka_unit_test(test_authn_spf_include_results),
		cmocka_unit_test(test_authn_spf_redirect),
		cmocka_unit_test(test_authn_spf_explanation),
		cmocka_unit_test(test_authn_spf_lookup_limit),
		cmocka_unit_test(test_authn_spf_void_lookup_limit),
		cmocka_unit_test(test_authn_spf_mx_limit_and_errors),
		cmocka_unit_test(test_authn_spf_appendix_a3_dnsbl_style),
		cmocka_unit_test(
		    test_authn_spf_appendix_a4_multiple_requirements),
		cmocka_unit_test(test_authn_spf_macro_examples_of_7_4),
		cmocka_unit_test(
		    test_authn_spf_long_expansion_is_cut_to_253_from_the_left),
		cmocka_unit_test(test_authn_spf_helo_and_null_sender),
		cmocka_unit_test(test_authn_spf_record_bounds),
		cmocka_unit_test(test_authn_ar_field_shape),
		cmocka_unit_test(test_authn_ar_strip_removes_only_our_id),
		cmocka_unit_test(test_authn_ar_strip_white_space_before_colon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
