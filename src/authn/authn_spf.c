/*
 * authn_spf: the SPF record parser and check_host() of RFC 7208 §4-§6.
 * A record is parsed whole before any term is evaluated, so a syntax
 * error anywhere is a permerror (§4.6) even behind a matching term. DNS
 * comes through struct authn_dns; every lookup is counted against the
 * limits of §4.6.4 and bounded in time (struct spf_eval).
 */
#include "authn/authn_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/util.h"

enum spf_mech {
	MECH_ALL,
	MECH_INCLUDE,
	MECH_A,
	MECH_MX,
	MECH_PTR,
	MECH_IP4,
	MECH_IP6,
	MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	char qualifier;		/* '+', '-', '~', '?' */
	const char *spec;	/* domain-spec (in the record's copy), or NULL */
	size_t spec_len;
	unsigned char addr[16];	/* ip4, ip6 */
	int cidr4, cidr6;	/* -1: not given */
};

struct spf_record {
	char *text;		/* our copy; specs point into it */
	struct spf_term *terms;
	size_t nterms;
	const char *redirect, *exp;
	size_t redirect_len, exp_len;
};

static const struct {
	const char *name;
	enum spf_mech mech;
	bool has_spec;		/* ":domain-spec" allowed */
	bool needs_spec;
	bool has_cidr;		/* dual-cidr-length allowed */
} mechs[] = {
	{ "all", MECH_ALL, false, false, false },
	{ "include", MECH_INCLUDE, true, true, false },
	{ "a", MECH_A, true, false, true },
	{ "mx", MECH_MX, true, false, true },
	{ "ptr", MECH_PTR, true, false, false },
	{ "ip4", MECH_IP4, false, false, false },
	{ "ip6", MECH_IP6, false, false, false },
	{ "exists", MECH_EXISTS, true, true, false },
};

const char *
authn_spf_result_name(enum authn_spf_result r)
{
	static const char *const names[] = {
		"none", "neutral", "pass", "fail", "softfail", "temperror",
		"permerror",
	};

	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "permerror";
}

enum spf_err
spf_fail(struct spf_eval *ev, enum spf_err rc, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ev->reason != NULL)
		return rc;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		panic("vasprintf: out of memory");
	va_end(ap);
	ev->reason = msg;
	return rc;
}

/* ---- The record's syntax (§4.6.1, §12) --------------------------------- */

static bool
is_alnum(char c)
{
	return isascii((unsigned char)c) && isalnum((unsigned char)c);
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
is_toplabel(const char *s, size_t n)
{
	bool has_alpha = false, has_hyphen = false;

	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-')
			has_hyphen = true;
		else if (!is_alnum(s[i]))
			return false;
		else if (isalpha((unsigned char)s[i]))
			has_alpha = true;
	}
	return has_alpha || has_hyphen;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand (§7.1). */
static bool
is_domain_spec(const char *s, size_t n)
{
	size_t tail, end = n, dot;

	if (n == 0 || spf_macro_scan(s, n, false, &tail) < 0)
		return false;
	if (tail == n)
		return true;	/* ends with a macro-expand */
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > tail && s[dot - 1] != '.'; dot--)
		;
	if (dot == tail)
		return false;	/* no literal "." before the top label */
	return is_toplabel(s + dot, end - dot);
}

/* "/N" with N of at most maxdigits digits and no leading zero (§12). */
static int
cidr_parse(const char *s, size_t n, unsigned maxdigits, unsigned max,
    int *out)
{
	unsigned v = 0;

	if (n < 2 || n - 1 > maxdigits || s[0] != '/' ||
	    (s[1] == '0' && n > 2))
		return -1;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;	/* §5.6: an invalid length is a permerror */
	*out = (int)v;
	return 0;
}

/* Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off
 * body[0..*n); returns 0, or -1 on a malformed length. */
static int
dual_cidr_split(const char *body, size_t *n, struct spf_term *t)
{
	size_t len = *n, i;

	/* The last "/digits" run; "//digits" is the IPv6 length. */
	for (int pass = 0; pass < 2; pass++) {
		i = len;
		while (i > 0 && body[i - 1] >= '0' && body[i - 1] <= '9')
			i--;
		if (i == len || i == 0 || body[i - 1] != '/')
			break;
		if (i >= 2 && body[i - 2] == '/') {
			if (t->cidr6 >= 0 || t->cidr4 >= 0)
				return -1;
			if (cidr_parse(body + i - 1, len - i + 1, 3, 128,
			    &t->cidr6) < 0)
				return -1;
			len = i - 2;
		} else {
			if (t->cidr4 >= 0)
				return -1;
			if (cidr_parse(body + i - 1, len - i + 1, 2, 32,
			    &t->cidr4) < 0)
				return -1;
			len = i - 1;
			break;	/* the IPv4 length comes first */
		}
	}
	*n = len;
	return 0;
}

static int
ip_parse(struct spf_term *t, const char *s, size_t n, char *err,
    size_t errlen)
{
	char buf[64];
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	int af = t->mech == MECH_IP4 ? AF_INET : AF_INET6;

	if (alen == 0 || alen >= sizeof(buf)) {
		snprintf(err, errlen, "%s: no address", af == AF_INET ?
		    "ip4" : "ip6");
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(af, buf, t->addr) != 1) {
		snprintf(err, errlen, "%s: bad address '%s'", af == AF_INET ?
		    "ip4" : "ip6", buf);
		return -1;
	}
	if (slash != NULL) {
		int *cidr = af == AF_INET ? &t->cidr4 : &t->cidr6;

		if (cidr_parse(slash, n - alen, af == AF_INET ? 2 : 3,
		    af == AF_INET ? 32 : 128, cidr) < 0) {
			snprintf(err, errlen, "%s: bad prefix length '%.*s'",
			    af == AF_INET ? "ip4" : "ip6", (int)(n - alen),
			    slash);
			return -1;
		}
	}
	return 0;
}

/* One directive: [qualifier] mechanism. */
static int
directive_parse(struct spf_term *t, const char *s, size_t n, char *err,
    size_t errlen)
{
	size_t name_len = 0;
	size_t i;

	t->qualifier = '+';
	t->cidr4 = t->cidr6 = -1;
	if (n > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		s++;
		n--;
	}
	while (name_len < n && s[name_len] != ':' && s[name_len] != '/')
		name_len++;
	for (i = 0; i < ARRAY_LEN(mechs); i++) {
		if (strlen(mechs[i].name) == name_len &&
		    strncasecmp(mechs[i].name, s, name_len) == 0)
			break;
	}
	if (i == ARRAY_LEN(mechs)) {
		snprintf(err, errlen, "unknown mechanism '%.*s'",
		    (int)(name_len > 40 ? 40 : name_len), s);
		return -1;
	}
	t->mech = mechs[i].mech;
	s += name_len;
	n -= name_len;
	if (t->mech == MECH_IP4 || t->mech == MECH_IP6) {
		if (n == 0 || s[0] != ':') {
			snprintf(err, errlen, "%s needs an address",
			    mechs[i].name);
			return -1;
		}
		return ip_parse(t, s + 1, n - 1, err, errlen);
	}
	if (mechs[i].has_cidr && dual_cidr_split(s, &n, t) < 0) {
		snprintf(err, errlen, "%s: bad prefix length", mechs[i].name);
		return -1;
	}
	if (n == 0) {
		if (mechs[i].needs_spec) {
			snprintf(err, errlen, "%s needs a domain",
			    mechs[i].name);
			return -1;
		}
		return 0;
	}
	if (!mechs[i].has_spec || s[0] != ':' ||
	    !is_domain_spec(s + 1, n - 1)) {
		snprintf(err, errlen, "%s: bad argument '%.*s'",
		    mechs[i].name, (int)(n > 60 ? 60 : n), s);
		return -1;
	}
	t->spec = s + 1;
	t->spec_len = n - 1;
	return 0;
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); the length of the
 * name if s starts with "name=", else 0. */
static size_t
modifier_name_len(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !isascii((unsigned char)s[0]) ||
	    !isalpha((unsigned char)s[0]))
		return 0;
	while (i < n && (is_alnum(s[i]) || s[i] == '-' || s[i] == '_' ||
	    s[i] == '.'))
		i++;
	return i < n && s[i] == '=' ? i : 0;
}

static void
record_free(struct spf_record *r)
{
	free(r->text);
	free(r->terms);
	memset(r, 0, sizeof(*r));
}

/* Parses the terms after "v=spf1". Returns 0, or -1 with err set. */
static int
record_parse(const char *text, size_t len, struct spf_record *r, char *err,
    size_t errlen)
{
	char *p, *end;

	memset(r, 0, sizeof(*r));
	if (len > AUTHN_SPF_RECORD_MAX) {
		snprintf(err, errlen, "record longer than %d bytes",
		    AUTHN_SPF_RECORD_MAX);
		return -1;
	}
	if (!is_authn_spf_record(text, len)) {
		snprintf(err, errlen, "not an SPF record");
		return -1;
	}
	r->text = xstrndup(text, len);
	if (strlen(r->text) != len) {
		snprintf(err, errlen, "NUL byte in the record");
		record_free(r);
		return -1;
	}
	p = r->text + 6;
	end = r->text + len;
	while (p < end) {
		char *term;
		size_t n, mlen;

		/* terms = *( 1*SP ( directive / modifier ) ); record =
		 * version terms *SP (§4.5, §12). */
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		term = p;
		while (p < end && *p != ' ')
			p++;
		n = (size_t)(p - term);
		mlen = modifier_name_len(term, n);
		if (mlen > 0) {
			const char *v = term + mlen + 1;
			size_t vn = n - mlen - 1;

			if (mlen == 8 && strncasecmp(term, "redirect", 8) == 0) {
				/* §6: at most one of each. */
				if (r->redirect != NULL ||
				    !is_domain_spec(v, vn)) {
					snprintf(err, errlen, "bad or second "
					    "redirect=");
					goto bad;
				}
				r->redirect = v;
				r->redirect_len = vn;
			} else if (mlen == 3 &&
			    strncasecmp(term, "exp", 3) == 0) {
				if (r->exp != NULL || !is_domain_spec(v, vn)) {
					snprintf(err, errlen, "bad or second "
					    "exp=");
					goto bad;
				}
				r->exp = v;
				r->exp_len = vn;
			} else if (spf_macro_check(v, vn, true) < 0) {
				/* §6: unknown modifiers are ignored, but
				 * their syntax is checked. */
				snprintf(err, errlen, "bad modifier '%.*s'",
				    (int)(n > 60 ? 60 : n), term);
				goto bad;
			}
			continue;
		}
		if (r->nterms == AUTHN_SPF_TERMS_MAX) {
			snprintf(err, errlen, "more than %d terms",
			    AUTHN_SPF_TERMS_MAX);
			goto bad;
		}
		if (r->terms == NULL)
			r->terms = xcalloc(AUTHN_SPF_TERMS_MAX,
			    sizeof(*r->terms));
		if (directive_parse(&r->terms[r->nterms], term, n, err,
		    errlen) < 0)
			goto bad;
		r->nterms++;
	}
	return 0;
bad:
	record_free(r);
	return -1;
}

bool
is_authn_spf_record(const char *text, size_t len)
{
	/* §4.5: "v=spf1" exactly (any case), then a space or the end. */
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	    (len == 6 || text[6] == ' ');
}

int
authn_spf_record_check(const char *text, size_t len, char *err,
    size_t errlen)
{
	struct spf_record r;

	if (record_parse(text, len, &r, err, errlen) < 0)
		return -1;
	record_free(&r);
	return 0;
}

/* ---- DNS under the limits ---------------------------------------------- */

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool
is_spf_domain_ok(const char *name, bool is_multi)
{
	size_t len = strlen(name), label = 0, labels = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
			continue;
		}
		if ((unsigned char)name[i] <= ' ' ||
		    (unsigned char)name[i] >= 0x7f)
			return false;
		label++;
	}
	return !is_multi || labels >= 2;
}

void
spf_rrs_free(char **rrs, size_t n)
{
	if (rrs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(rrs[i]);
	free(rrs);
}

enum spf_err
spf_lookup_count(struct spf_eval *ev)
{
	/* §4.6.4: include, a, mx, ptr, exists and redirect count. */
	if (++ev->lookups > AUTHN_SPF_LOOKUPS_MAX)
		return spf_fail(ev, SPF_PERM, "more than %d DNS lookups",
		    AUTHN_SPF_LOOKUPS_MAX);
	return SPF_OK;
}

enum spf_err
spf_query(struct spf_eval *ev, enum authn_dns_type type, const char *name,
    bool is_void_counted, char ***rrs_out, size_t *n_out)
{
	char q[256];
	size_t len = strlen(name);
	enum authn_dns_rc rc = AUTHN_DNS_NXDOMAIN;

	*rrs_out = NULL;
	*n_out = 0;
	if (is_spf_domain_ok(name, false)) {
		if (ev->deadline > 0 && now_mono() > ev->deadline)
			return spf_fail(ev, SPF_TEMP, "DNS took longer than "
			    "the check's time limit");
		if (name[len - 1] == '.')
			len--;
		memcpy(q, name, len);
		q[len] = '\0';
		rc = ev->dns->query(ev->dns->arg, type, q, rrs_out, n_out);
	}
	if (rc == AUTHN_DNS_OK && *n_out > 0)
		return SPF_OK;
	if (rc == AUTHN_DNS_OK)
		spf_rrs_free(*rrs_out, 0);
	*rrs_out = NULL;
	*n_out = 0;
	if (rc == AUTHN_DNS_FAIL)
		return spf_fail(ev, SPF_TEMP, "DNS error looking up %.253s",
		    name);
	if (is_void_counted && ++ev->voids > AUTHN_SPF_VOID_MAX)
		return spf_fail(ev, SPF_PERM, "more than %d void lookups "
		    "(last: %.253s)", AUTHN_SPF_VOID_MAX, name);
	return SPF_VOID;
}

/* ---- Matching ---------------------------------------------------------- */

static bool
is_prefix_match(const unsigned char *a, const unsigned char *b,
    unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

/* Does the textual address match the client within the term's length? */
static bool
is_addr_match(const struct spf_eval *ev, const char *text,
    const struct spf_term *t)
{
	unsigned char a[16];
	int af = ev->family;
	int cidr = af == AF_INET ? t->cidr4 : t->cidr6;

	if (inet_pton(af, text, a) != 1)
		return false;
	if (cidr < 0)
		cidr = af == AF_INET ? 32 : 128;
	return is_prefix_match(a, ev->ip, (unsigned)cidr);
}

/* A or AAAA by the client's family (§5.3). */
static enum authn_dns_type
addr_type(const struct spf_eval *ev)
{
	return ev->family == AF_INET ? AUTHN_DNS_A : AUTHN_DNS_AAAA;
}

/* The target of a term: its domain-spec expanded, else the domain. */
static char *
target_of(struct spf_eval *ev, const struct spf_term *t, const char *domain,
    const char *sender, enum spf_err *err)
{
	char *s;

	*err = SPF_OK;
	if (t->spec == NULL)
		return xstrdup(domain);
	s = spf_expand(ev, domain, sender, t->spec, t->spec_len, false, err);
	if (s != NULL)
		spf_domain_truncate(s);
	return s;
}

/* 1: match, 0: none, or an spf_err < 0. */
static int
addrs_match(struct spf_eval *ev, const char *name, const struct spf_term *t)
{
	char **rrs;
	size_t n;
	enum spf_err rc = spf_query(ev, addr_type(ev), name, true, &rrs, &n);
	int m = 0;

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && m == 0; i++)
		m = is_addr_match(ev, rrs[i], t);
	spf_rrs_free(rrs, n);
	return m;
}

static int
mx_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	unsigned long px = strtoul(x, NULL, 10), py = strtoul(y, NULL, 10);

	if (px != py)
		return px < py ? -1 : 1;
	return strcasecmp(x, y);
}

static int
mx_match(struct spf_eval *ev, const char *name, const struct spf_term *t)
{
	char **rrs;
	size_t n;
	enum spf_err rc = spf_query(ev, AUTHN_DNS_MX, name, true, &rrs, &n);
	int m = 0;

	if (rc < 0)
		return rc;
	/* §4.6.4: more than 10 MX names is a permerror. */
	if (n > AUTHN_SPF_MX_MAX) {
		spf_rrs_free(rrs, n);
		return spf_fail(ev, SPF_PERM, "mx: %.253s has more than %d "
		    "MX records", name, AUTHN_SPF_MX_MAX);
	}
	if (n > 1)	/* rrs is NULL when there is no record */
		qsort(rrs, n, sizeof(*rrs), mx_cmp);
	for (size_t i = 0; i < n && m == 0; i++) {
		const char *host = strchr(rrs[i], ' ');

		host = host ? host + 1 : rrs[i];
		/* A null MX ("0 .", RFC 7505) names no host. */
		if (*host == '\0' || strcmp(host, ".") == 0)
			continue;
		m = addrs_match(ev, host, t);
	}
	spf_rrs_free(rrs, n);
	return m;
}

static bool
is_subdomain_or_same(const char *name, const char *target)
{
	size_t n = strlen(name), t = strlen(target);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (t > 0 && target[t - 1] == '.')
		t--;
	if (n == t)
		return strncasecmp(name, target, n) == 0;
	return n > t && name[n - t - 1] == '.' &&
	    strncasecmp(name + n - t, target, t) == 0;
}

size_t
spf_ptr_validated(struct spf_eval *ev, char ***names_out)
{
	char rev[128], **ptrs, **valid;
	size_t n, nvalid = 0;
	int len = 0;

	*names_out = NULL;
	if (ev->family == AF_INET) {
		len = snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
		    ev->ip[3], ev->ip[2], ev->ip[1], ev->ip[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			len += snprintf(rev + len, sizeof(rev) - (size_t)len,
			    "%x.%x.", ev->ip[i] & 0xf, ev->ip[i] >> 4);
		snprintf(rev + len, sizeof(rev) - (size_t)len, "ip6.arpa");
	}
	if (spf_query(ev, AUTHN_DNS_PTR, rev, true, &ptrs, &n) != SPF_OK)
		return 0;
	valid = xcalloc(n, sizeof(*valid));
	/* §4.6.4: only the first 10 names are looked at. */
	for (size_t i = 0; i < n && i < AUTHN_SPF_PTR_MAX; i++) {
		char **addrs;
		size_t na;
		bool is_valid = false;

		/* §5.5: errors looking up a name only skip it. */
		if (spf_query(ev, addr_type(ev), ptrs[i], true, &addrs,
		    &na) != SPF_OK)
			continue;
		for (size_t j = 0; j < na && !is_valid; j++) {
			unsigned char a[16];

			is_valid = inet_pton(ev->family, addrs[j], a) == 1 &&
			    memcmp(a, ev->ip, ev->family == AF_INET ?
			    4 : 16) == 0;
		}
		spf_rrs_free(addrs, na);
		if (is_valid) {
			valid[nvalid++] = ptrs[i];
			ptrs[i] = NULL;
		}
	}
	spf_rrs_free(ptrs, n);
	*names_out = valid;
	return nvalid;
}

static int
ptr_match(struct spf_eval *ev, const char *target)
{
	char **names;
	size_t n = spf_ptr_validated(ev, &names);
	int m = 0;

	/* The void limit may have been passed on the way. */
	if (ev->voids > AUTHN_SPF_VOID_MAX) {
		spf_rrs_free(names, n);
		return SPF_PERM;
	}
	for (size_t i = 0; i < n && m == 0; i++)
		m = is_subdomain_or_same(names[i], target);
	spf_rrs_free(names, n);
	return m;
}

/* ---- check_host() (§4) ------------------------------------------------- */

struct host_result {
	enum authn_spf_result result;
	char *explanation;
};

static void check_host(struct spf_eval *ev, const char *domain,
    const char *sender, bool want_exp, unsigned depth,
    struct host_result *out);

static enum authn_spf_result
result_of_err(enum spf_err rc)
{
	return rc == SPF_TEMP ? AUTHN_SPF_TEMPERROR : AUTHN_SPF_PERMERROR;
}

/* §5.2: include matches on the target's pass only. */
static int
include_match(struct spf_eval *ev, const char *target, const char *sender,
    unsigned depth)
{
	struct host_result hr = { 0 };

	check_host(ev, target, sender, false, depth + 1, &hr);
	free(hr.explanation);
	switch (hr.result) {
	case AUTHN_SPF_PASS:
		return 1;
	case AUTHN_SPF_FAIL:
	case AUTHN_SPF_SOFTFAIL:
	case AUTHN_SPF_NEUTRAL:
		return 0;
	case AUTHN_SPF_TEMPERROR:
		return SPF_TEMP;
	case AUTHN_SPF_NONE:
		return spf_fail(ev, SPF_PERM, "include:%.253s has no SPF "
		    "record", target);
	default:
		return SPF_PERM;
	}
}

/* 1: the term matches, 0: it does not, < 0: an spf_err. */
static int
term_match(struct spf_eval *ev, const struct spf_term *t, const char *domain,
    const char *sender, unsigned depth)
{
	enum spf_err err;
	char *target;
	int m;

	switch (t->mech) {
	case MECH_ALL:
		return 1;
	case MECH_IP4:
		return ev->family == AF_INET && is_prefix_match(t->addr,
		    ev->ip, t->cidr4 < 0 ? 32 : (unsigned)t->cidr4);
	case MECH_IP6:
		return ev->family == AF_INET6 && is_prefix_match(t->addr,
		    ev->ip, t->cidr6 < 0 ? 128 : (unsigned)t->cidr6);
	default:
		break;
	}
	if ((err = spf_lookup_count(ev)) < 0)
		return err;
	target = target_of(ev, t, domain, sender, &err);
	if (target == NULL)
		return err;
	switch (t->mech) {
	case MECH_INCLUDE:
		m = include_match(ev, target, sender, depth);
		break;
	case MECH_A:
		m = addrs_match(ev, target, t);
		break;
	case MECH_MX:
		m = mx_match(ev, target, t);
		break;
	case MECH_PTR:
		m = ptr_match(ev, target);
		break;
	case MECH_EXISTS: {
		char **rrs;
		size_t n;

		/* §5.7: always an A query, whatever the client's family. */
		m = spf_query(ev, AUTHN_DNS_A, target, true, &rrs, &n);
		spf_rrs_free(rrs, n);
		if (m == SPF_OK)
			m = 1;
		else if (m == SPF_VOID)
			m = 0;
		break;
	}
	default:
		panic("spf: mechanism %d", (int)t->mech);
	}
	free(target);
	return m;
}

static enum authn_spf_result
result_of_qualifier(char q)
{
	switch (q) {
	case '-':
		return AUTHN_SPF_FAIL;
	case '~':
		return AUTHN_SPF_SOFTFAIL;
	case '?':
		return AUTHN_SPF_NEUTRAL;
	default:
		return AUTHN_SPF_PASS;
	}
}

/* §6.2: the explanation, or NULL when anything about it goes wrong. */
static char *
explanation(struct spf_eval *ev, const struct spf_record *r,
    const char *domain, const char *sender)
{
	enum spf_err err;
	char *name, **rrs, *text = NULL;
	size_t n;
	char *saved = ev->reason;

	ev->reason = NULL;
	name = spf_expand(ev, domain, sender, r->exp, r->exp_len, false,
	    &err);
	if (name != NULL) {
		spf_domain_truncate(name);
		/* Not counted as a lookup, nor as void (§4.6.4, §6.2). */
		if (spf_query(ev, AUTHN_DNS_TXT, name, false, &rrs, &n) ==
		    SPF_OK) {
			if (n == 1)
				text = spf_expand(ev, domain, sender, rrs[0],
				    strlen(rrs[0]), true, &err);
			spf_rrs_free(rrs, n);
		}
		free(name);
	}
	free(ev->reason);
	ev->reason = saved;
	return text;
}

/* Fetches and parses domain's record (§4.4, §4.5). */
static enum authn_spf_result
record_fetch(struct spf_eval *ev, const char *domain, struct spf_record *r)
{
	char **rrs, err[160];
	size_t n, found = 0, which = 0;
	enum spf_err rc;

	rc = spf_query(ev, AUTHN_DNS_TXT, domain, false, &rrs, &n);
	if (rc == SPF_TEMP)
		return AUTHN_SPF_TEMPERROR;
	if (rc != SPF_OK) {
		spf_fail(ev, SPF_OK, "no SPF record at %.253s", domain);
		return AUTHN_SPF_NONE;
	}
	for (size_t i = 0; i < n; i++) {
		if (is_authn_spf_record(rrs[i], strlen(rrs[i]))) {
			found++;
			which = i;
		}
	}
	if (found == 0) {
		spf_rrs_free(rrs, n);
		spf_fail(ev, SPF_OK, "no SPF record at %.253s", domain);
		return AUTHN_SPF_NONE;
	}
	if (found > 1) {
		spf_rrs_free(rrs, n);
		spf_fail(ev, SPF_PERM, "%.253s has %zu SPF records", domain,
		    found);
		return AUTHN_SPF_PERMERROR;
	}
	if (record_parse(rrs[which], strlen(rrs[which]), r, err,
	    sizeof(err)) < 0) {
		spf_rrs_free(rrs, n);
		spf_fail(ev, SPF_PERM, "%.253s: %s", domain, err);
		return AUTHN_SPF_PERMERROR;
	}
	spf_rrs_free(rrs, n);
	return AUTHN_SPF_PASS;	/* meaning: a record */
}

static void
check_host(struct spf_eval *ev, const char *domain, const char *sender,
    bool want_exp, unsigned depth, struct host_result *out)
{
	struct spf_record r;
	enum authn_spf_result rr;

	out->result = AUTHN_SPF_NONE;
	out->explanation = NULL;
	/* §4.3: a malformed or single-label domain has no policy. The
	 * lookup limit bounds depth; this is a second guard. */
	if (!is_spf_domain_ok(domain, true)) {
		spf_fail(ev, SPF_OK, "'%.253s' is not a domain name", domain);
		return;
	}
	if (depth > AUTHN_SPF_LOOKUPS_MAX + 1) {
		out->result = AUTHN_SPF_PERMERROR;
		return;
	}
	rr = record_fetch(ev, domain, &r);
	if (rr != AUTHN_SPF_PASS) {
		out->result = rr;
		return;
	}
	for (size_t i = 0; i < r.nterms; i++) {
		int m = term_match(ev, &r.terms[i], domain, sender, depth);

		if (m < 0) {
			out->result = result_of_err(m);
			goto done;
		}
		if (m == 1) {
			out->result = result_of_qualifier(r.terms[i].qualifier);
			if (depth == 0 && ev->reason == NULL)
				spf_fail(ev, SPF_OK, "%.253s: term %zu "
				    "matched", domain, i + 1);
			if (out->result == AUTHN_SPF_FAIL && want_exp &&
			    r.exp != NULL)
				out->explanation = explanation(ev, &r, domain,
				    sender);
			goto done;
		}
	}
	if (r.redirect != NULL) {
		/* §6.1: only when no mechanism matched; the target's
		 * result (and its exp=, never ours) is the result. */
		enum spf_err err = spf_lookup_count(ev);
		char *target;

		if (err < 0) {
			out->result = result_of_err(err);
			goto done;
		}
		target = spf_expand(ev, domain, sender, r.redirect,
		    r.redirect_len, false, &err);
		if (target == NULL) {
			out->result = result_of_err(err);
			goto done;
		}
		spf_domain_truncate(target);
		check_host(ev, target, sender, want_exp, depth + 1, out);
		if (out->result == AUTHN_SPF_NONE) {
			free(ev->reason);
			ev->reason = NULL;
			spf_fail(ev, SPF_PERM, "redirect=%.253s has no SPF "
			    "record", target);
			out->result = AUTHN_SPF_PERMERROR;
		}
		free(target);
		goto done;
	}
	/* §4.7: nothing matched, no redirect. */
	out->result = AUTHN_SPF_NEUTRAL;
	if (depth == 0)
		spf_fail(ev, SPF_OK, "%.253s: no term matched", domain);
done:
	record_free(&r);
}

/* ---- Entry points ------------------------------------------------------ */

int
spf_eval_init(struct spf_eval *ev, const struct authn_dns *dns,
    const struct authn_spf_request *req)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	memset(ev, 0, sizeof(*ev));
	ev->dns = dns;
	ev->req = req;
	if (req->ip != NULL && inet_pton(AF_INET, req->ip, ev->ip) == 1) {
		ev->family = AF_INET;
	} else if (req->ip != NULL &&
	    inet_pton(AF_INET6, req->ip, ev->ip) == 1) {
		ev->family = AF_INET6;
		/* §5: an IPv4-mapped address is checked as IPv4. */
		if (memcmp(ev->ip, mapped, sizeof(mapped)) == 0) {
			memmove(ev->ip, ev->ip + 12, 4);
			ev->family = AF_INET;
		}
	} else {
		return -1;
	}
	inet_ntop(ev->family, ev->ip, ev->ip_text, sizeof(ev->ip_text));
	if (req->timeout > 0)
		ev->deadline = now_mono() + req->timeout;
	return 0;
}

void
authn_spf_check_host(const struct authn_dns *dns,
    const struct authn_spf_request *req, const char *domain,
    const char *sender, struct authn_spf_outcome *out)
{
	struct spf_eval ev;
	struct host_result hr = { 0 };

	memset(out, 0, sizeof(*out));
	out->domain = xstrdup(domain);
	out->sender = xstrdup(sender);
	if (spf_eval_init(&ev, dns, req) < 0) {
		out->result = AUTHN_SPF_NONE;
		out->reason = xstrdup("no client address");
		return;
	}
	check_host(&ev, domain, sender, true, 0, &hr);
	out->result = hr.result;
	out->explanation = hr.explanation;
	out->reason = ev.reason;
	out->lookups = ev.lookups;
	out->voids = ev.voids;
}

void
authn_spf_check_mailfrom(const struct authn_dns *dns,
    const struct authn_spf_request *req, struct authn_spf_outcome *out)
{
	const char *at = req->sender ? strrchr(req->sender, '@') : NULL;
	char *sender;

	if (req->sender == NULL || req->sender[0] == '\0') {
		/* §2.4: the null sender is checked as postmaster@HELO. */
		authn_spf_check_helo(dns, req, out);
		return;
	}
	if (at == NULL || at[1] == '\0') {
		memset(out, 0, sizeof(*out));
		out->result = AUTHN_SPF_NONE;
		out->sender = xstrdup(req->sender);
		out->reason = xstrdup("the sender has no domain");
		return;
	}
	/* §4.3: no local-part: "postmaster". */
	sender = at == req->sender ? xasprintf("postmaster%s", at) :
	    xstrdup(req->sender);
	authn_spf_check_host(dns, req, at + 1, sender, out);
	free(sender);
}

void
authn_spf_check_helo(const struct authn_dns *dns,
    const struct authn_spf_request *req, struct authn_spf_outcome *out)
{
	char *sender;

	/* §2.3: a HELO that is not a domain name (an address literal, one
	 * label) gives no SPF result. */
	if (req->helo == NULL || req->helo[0] == '[' ||
	    !is_spf_domain_ok(req->helo, true)) {
		memset(out, 0, sizeof(*out));
		out->result = AUTHN_SPF_NONE;
		out->domain = req->helo ? xstrdup(req->helo) : NULL;
		out->reason = xstrdup("HELO is not a domain name");
		return;
	}
	sender = xasprintf("postmaster@%s", req->helo);
	authn_spf_check_host(dns, req, req->helo, sender, out);
	free(sender);
}

void
authn_spf_outcome_deinit(struct authn_spf_outcome *o)
{
	free(o->domain);
	free(o->sender);
	free(o->explanation);
	free(o->reason);
	memset(o, 0, sizeof(*o));
}

bool
is_authn_spf_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}
