/*
 * authn_dmarc: DMARC (RFC 7489) for one message, with DMARCbis's DNS tree
 * walk for policy discovery (np=, t=, psd= too). A pure function of its
 * request (author domain, SPF result and domain, DKIM results) and of the
 * DNS answers it gets through struct authn_dns, as SPF is.
 *
 * Policy discovery (DMARCbis, "DNS Tree Walk"): _dmarc.<author domain>
 * first; without a record there, its ancestors, one label less each
 * time, jumping to the 7 rightmost labels when the name has 8 or more,
 * down to the TLD: at most AUTHN_DMARC_WALK_MAX questions. The first
 * record found is the policy: p= when it is the author domain's own,
 * else sp= (np= when the author domain does not exist), falling back to
 * p=. A DNS error anywhere in the walk is a temperror (a record the walk
 * did not see could be the policy).
 *
 * Alignment (§3.1): strict is equality; relaxed compares organizational
 * domains taken from the Public Suffix List (§3.2). SPF counts when it
 * passed for the MAIL FROM domain (the HELO domain for the null sender,
 * §3.1.2 via RFC 7208 §2.4); DKIM when any verified signature's d=
 * aligns.
 *
 * Bounds: a record of AUTHN_DMARC_RECORD_MAX bytes and
 * AUTHN_DMARC_TAGS_MAX tags (more is not a DMARC record), rua/ruf keep
 * AUTHN_DMARC_URIS_MAX URIs of AUTHN_DMARC_URI_MAX bytes, at most
 * AUTHN_SPF_RRS_MAX TXT records read at one name, AUTHN_DMARC_DKIM_MAX DKIM
 * results looked at. Each step is linear in its input.
 */
#include "authn/authn_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

const char *
authn_dmarc_result_name(enum authn_dmarc_result r)
{
	switch (r) {
	case AUTHN_DMARC_PASS:
		return "pass";
	case AUTHN_DMARC_FAIL:
		return "fail";
	case AUTHN_DMARC_TEMPERROR:
		return "temperror";
	case AUTHN_DMARC_PERMERROR:
		return "permerror";
	case AUTHN_DMARC_NONE:
		break;
	}
	return "none";
}

const char *
authn_dmarc_policy_name(enum authn_dmarc_policy p)
{
	switch (p) {
	case AUTHN_DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case AUTHN_DMARC_POLICY_REJECT:
		return "reject";
	default:
		return "none";
	}
}

/* ---- The record (§6.3, §6.4) ------------------------------------------ */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims white space around [*s, *e). */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && is_wsp(**s))
		(*s)++;
	while (*e > *s && is_wsp((*e)[-1]))
		(*e)--;
}

static bool
is_word(const char *v, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

static enum authn_dmarc_policy
policy_parse(const char *v, size_t n)
{
	if (is_word(v, n, "none"))
		return AUTHN_DMARC_POLICY_NONE;
	if (is_word(v, n, "quarantine"))
		return AUTHN_DMARC_POLICY_QUARANTINE;
	if (is_word(v, n, "reject"))
		return AUTHN_DMARC_POLICY_REJECT;
	return AUTHN_DMARC_POLICY_UNSET;
}

/* A decimal of at most 10 digits, <= max. */
static bool
number_parse(const char *v, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long x = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	if (x > max)
		return false;
	*out = x;
	return true;
}

/* rua/ruf (§6.3, §6.4 dmarc-uri): URIs separated by commas; each kept
 * whole (with its "!size") when printable and short enough. */
static void
uris_parse(const char *v, size_t n, char uris[][AUTHN_DMARC_URI_MAX + 1],
    size_t *nuris)
{
	const char *end = v + n;

	*nuris = 0;
	while (v < end && *nuris < AUTHN_DMARC_URIS_MAX) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *s = v, *e = comma ? comma : end;
		bool ok = true;

		trim(&s, &e);
		if (e > s && (size_t)(e - s) <= AUTHN_DMARC_URI_MAX) {
			for (const char *p = s; p < e; p++) {
				if ((unsigned char)*p <= ' ' ||
				    (unsigned char)*p >= 0x7f)
					ok = false;
			}
			if (ok && memchr(s, ':', (size_t)(e - s)) != NULL) {
				memcpy(uris[*nuris], s, (size_t)(e - s));
				uris[*nuris][e - s] = '\0';
				(*nuris)++;
			}
		}
		if (comma == NULL)
			break;
		v = comma + 1;
	}
}

/* fo (§6.3): "0", "1", "d", "s" separated by colons. */
static bool
is_fo_ok(const char *v, size_t n)
{
	if (n == 0 || n >= 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool is_opt = strchr("01ds", v[i]) != NULL;

		if (i % 2 == 0 ? !is_opt : v[i] != ':')
			return false;
	}
	return n % 2 == 1;
}

/* The first tag: "v" *WSP "=" *WSP "DMARC1", then *WSP and ";" or the
 * end. The value is case-sensitive (§6.4: %x44 %x4d ...). */
bool
is_authn_dmarc_record(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len && is_wsp(text[i]))
		i++;
	if (i >= len || text[i] != 'v')
		return false;
	i++;
	while (i < len && is_wsp(text[i]))
		i++;
	if (i >= len || text[i] != '=')
		return false;
	i++;
	while (i < len && is_wsp(text[i]))
		i++;
	if (len - i < 6 || memcmp(text + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && is_wsp(text[i]))
		i++;
	return i == len || text[i] == ';';
}

int
authn_dmarc_record_parse(const char *text, size_t len,
    struct authn_dmarc_record *rec, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned seen = 0, ntags = 0;
	enum { T_P = 1, T_SP = 2, T_NP = 4, T_PCT = 8, T_ADKIM = 16,
	    T_ASPF = 32, T_RUA = 64, T_RUF = 128, T_FO = 256, T_RF = 512,
	    T_RI = 1024, T_T = 2048, T_PSD = 4096 };

	memset(rec, 0, sizeof(*rec));
	rec->p = AUTHN_DMARC_POLICY_NONE;
	rec->pct = 100;
	rec->psd = 'u';
	rec->ri = 86400;
	strcpy(rec->fo, "0");
	strcpy(rec->rf, "afrf");
	if (len > AUTHN_DMARC_RECORD_MAX) {
		snprintf(err, errlen, "record longer than %d bytes",
		    AUTHN_DMARC_RECORD_MAX);
		return -1;
	}
	if (!is_authn_dmarc_record(text, len)) {
		snprintf(err, errlen, "not a DMARC record (v=DMARC1 first)");
		return -1;
	}
	/* The version tag was checked: the tags after its ";". */
	p = memchr(text, ';', len);
	p = p ? p + 1 : end;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *ts = p, *te = semi ? semi : end, *eq, *vs, *ve;
		size_t tn, vn;
		unsigned bit = 0;

		p = semi ? semi + 1 : end;
		trim(&ts, &te);
		if (ts == te)
			continue;	/* ";;" or a trailing ";" */
		if (++ntags > AUTHN_DMARC_TAGS_MAX) {
			snprintf(err, errlen, "more than %d tags",
			    AUTHN_DMARC_TAGS_MAX);
			return -1;
		}
		eq = memchr(ts, '=', (size_t)(te - ts));
		if (eq == NULL)
			continue;	/* not a tag: ignored */
		vs = eq + 1;
		ve = te;
		tn = (size_t)(eq - ts);
		while (tn > 0 && is_wsp(ts[tn - 1]))
			tn--;
		trim(&vs, &ve);
		vn = (size_t)(ve - vs);
		/* The first of a repeated tag counts. */
		if (is_word(ts, tn, "p"))
			bit = T_P;
		else if (is_word(ts, tn, "sp"))
			bit = T_SP;
		else if (is_word(ts, tn, "np"))
			bit = T_NP;
		else if (is_word(ts, tn, "pct"))
			bit = T_PCT;
		else if (is_word(ts, tn, "adkim"))
			bit = T_ADKIM;
		else if (is_word(ts, tn, "aspf"))
			bit = T_ASPF;
		else if (is_word(ts, tn, "rua"))
			bit = T_RUA;
		else if (is_word(ts, tn, "ruf"))
			bit = T_RUF;
		else if (is_word(ts, tn, "fo"))
			bit = T_FO;
		else if (is_word(ts, tn, "rf"))
			bit = T_RF;
		else if (is_word(ts, tn, "ri"))
			bit = T_RI;
		else if (is_word(ts, tn, "t"))
			bit = T_T;
		else if (is_word(ts, tn, "psd"))
			bit = T_PSD;
		if (bit == 0 || (seen & bit))
			continue;
		seen |= bit;
		switch (bit) {
		case T_P: {
			enum authn_dmarc_policy v = policy_parse(vs, vn);

			rec->p = v != AUTHN_DMARC_POLICY_UNSET ? v :
			    AUTHN_DMARC_POLICY_NONE;
			break;
		}
		case T_SP:
			rec->sp = policy_parse(vs, vn);
			break;
		case T_NP:
			rec->np = policy_parse(vs, vn);
			break;
		case T_PCT: {
			unsigned long x;

			if (number_parse(vs, vn, 100, &x))
				rec->pct = (unsigned)x;
			break;
		}
		case T_ADKIM:
		case T_ASPF: {
			bool *strict = bit == T_ADKIM ? &rec->is_adkim_strict :
			    &rec->is_aspf_strict;

			if (is_word(vs, vn, "s"))
				*strict = true;
			else if (is_word(vs, vn, "r"))
				*strict = false;
			break;
		}
		case T_RUA:
			uris_parse(vs, vn, rec->rua, &rec->nrua);
			break;
		case T_RUF:
			uris_parse(vs, vn, rec->ruf, &rec->nruf);
			break;
		case T_FO:
			if (is_fo_ok(vs, vn)) {
				memcpy(rec->fo, vs, vn);
				rec->fo[vn] = '\0';
			}
			break;
		case T_RF:
			if (vn > 0 && vn < sizeof(rec->rf)) {
				bool ok = true;

				for (size_t i = 0; i < vn; i++)
					ok = ok && (isalnum((unsigned char)
					    vs[i]) || vs[i] == ':');
				if (ok) {
					memcpy(rec->rf, vs, vn);
					rec->rf[vn] = '\0';
				}
			}
			break;
		case T_RI: {
			unsigned long x;

			if (number_parse(vs, vn, 4294967295ul, &x))
				rec->ri = x;
			break;
		}
		case T_T:
			if (is_word(vs, vn, "y"))
				rec->is_testing = true;
			break;
		case T_PSD:
			if (is_word(vs, vn, "y") || is_word(vs, vn, "n") ||
			    is_word(vs, vn, "u"))
				rec->psd = (char)tolower((unsigned char)*vs);
			break;
		}
	}
	return 0;
}

/* ---- The author domain (§6.6.1) --------------------------------------- */

enum authn_dmarc_from
authn_dmarc_from_domain(int rc, char *const *addrs, size_t nfields,
    char *domain_out, size_t domain_len, char *why, size_t whylen)
{
	size_t n = 0;

	domain_out[0] = '\0';
	if (rc < 0) {
		snprintf(why, whylen, "the From: field cannot be read as a "
		    "list of addresses");
		return AUTHN_DMARC_FROM_INVALID;
	}
	if (nfields == 0 || addrs == NULL || addrs[0] == NULL) {
		snprintf(why, whylen, "no From: address");
		return AUTHN_DMARC_FROM_ABSENT;
	}
	if (nfields > 1) {
		snprintf(why, whylen, "%zu From: fields", nfields);
		return AUTHN_DMARC_FROM_AMBIGUOUS;
	}
	for (char *const *a = addrs; *a != NULL; a++) {
		const char *at = strrchr(*a, '@');
		size_t dn;

		if (at == NULL || at[1] == '\0' || at[1] == '[' ||
		    !is_spf_domain_ok(at + 1, false)) {
			snprintf(why, whylen, "the From: address has no "
			    "domain name");
			return AUTHN_DMARC_FROM_INVALID;
		}
		dn = strlen(at + 1);
		if (dn > 0 && at[1 + dn - 1] == '.')
			dn--;
		if (dn >= domain_len || dn > AUTHN_DOMAIN_MAX) {
			snprintf(why, whylen, "the From: domain is too long");
			return AUTHN_DMARC_FROM_INVALID;
		}
		for (size_t i = 0; i < dn; i++) {
			unsigned char c = (unsigned char)at[1 + i];

			if (c >= 0x80) {
				/* A U-label: DNS would need its A-label. */
				snprintf(why, whylen, "the From: domain is "
				    "not ASCII");
				return AUTHN_DMARC_FROM_INVALID;
			}
		}
		if (n == 0) {
			for (size_t i = 0; i < dn; i++)
				domain_out[i] = (char)tolower(
				    (unsigned char)at[1 + i]);
			domain_out[dn] = '\0';
		} else if (strlen(domain_out) != dn ||
		    strncasecmp(domain_out, at + 1, dn) != 0) {
			snprintf(why, whylen, "the From: field names "
			    "addresses of several domains");
			domain_out[0] = '\0';
			return AUTHN_DMARC_FROM_AMBIGUOUS;
		}
		n++;
	}
	why[0] = '\0';
	return AUTHN_DMARC_FROM_OK;
}

/* ---- Policy discovery -------------------------------------------------- */

enum walk_rc {
	WALK_FOUND,
	WALK_NONE,
	WALK_TEMP,
};

/* The DMARC record at _dmarc.name: WALK_FOUND with *rec when exactly one
 * of the TXT records is a DMARC one (§6.6.3: none or several, and there
 * is no policy at that name). */
static enum walk_rc
record_at(const struct authn_dns *dns, const char *name,
    struct authn_dmarc_record *rec, struct authn_dmarc_outcome *out)
{
	char q[AUTHN_DOMAIN_MAX + 8];
	char **rrs = NULL;
	size_t n = 0, found = 0, which = 0;
	enum authn_dns_rc rc;
	enum walk_rc wrc = WALK_NONE;

	snprintf(q, sizeof(q), "_dmarc.%s", name);
	out->queries++;
	rc = dns->query(dns->arg, AUTHN_DNS_TXT, q, &rrs, &n);
	if (rc == AUTHN_DNS_FAIL) {
		snprintf(out->reason, sizeof(out->reason), "DNS error asking "
		    "for the DMARC record at %s", q);
		return WALK_TEMP;
	}
	if (rc != AUTHN_DNS_OK)
		return WALK_NONE;
	for (size_t i = 0; i < n && i < AUTHN_SPF_RRS_MAX; i++) {
		if (is_authn_dmarc_record(rrs[i], strlen(rrs[i]))) {
			found++;
			which = i;
		}
	}
	if (found == 1) {
		char err[128];

		if (authn_dmarc_record_parse(rrs[which], strlen(rrs[which]),
		    rec, err, sizeof(err)) == 0)
			wrc = WALK_FOUND;
	}
	spf_rrs_free(rrs, n);
	return wrc;
}

/* Does name exist (any answer but NXDOMAIN to an A question)? A DNS
 * error counts as existing: np= is never applied on a guess. */
static bool
is_domain_existing(const struct authn_dns *dns, const char *name,
    struct authn_dmarc_outcome *out)
{
	char **rrs = NULL;
	size_t n = 0;
	enum authn_dns_rc rc;

	out->queries++;
	rc = dns->query(dns->arg, AUTHN_DNS_A, name, &rrs, &n);
	if (rc == AUTHN_DNS_OK)
		spf_rrs_free(rrs, n);
	return rc != AUTHN_DNS_NXDOMAIN;
}

/* The labels of name: where each begins, left to right. */
static size_t
labels_of(const char *name, size_t *starts, size_t max)
{
	size_t n = 0;

	starts[n++] = 0;
	for (size_t i = 0; name[i] != '\0' && n < max; i++) {
		if (name[i] == '.')
			starts[n++] = i + 1;
	}
	return n;
}

/* The DNSbis tree walk. Fills out->policy_domain and *rec. */
static enum walk_rc
policy_discover(const struct authn_dns *dns, const char *domain,
    struct authn_dmarc_record *rec, struct authn_dmarc_outcome *out)
{
	size_t starts[AUTHN_DOMAIN_MAX / 2 + 2];
	size_t nlabels = labels_of(domain, starts,
	    sizeof(starts) / sizeof(starts[0]));
	size_t k;
	enum walk_rc rc;

	rc = record_at(dns, domain, rec, out);
	if (rc != WALK_NONE) {
		if (rc == WALK_FOUND)
			snprintf(out->policy_domain,
			    sizeof(out->policy_domain), "%s", domain);
		return rc;
	}
	/* k labels remain: 7 at most after the first question, then one
	 * fewer each time, down to the TLD. */
	k = nlabels - 1;
	if (k > AUTHN_DMARC_WALK_MAX - 1)
		k = AUTHN_DMARC_WALK_MAX - 1;
	for (; k >= 1; k--) {
		const char *anc = domain + starts[nlabels - k];

		rc = record_at(dns, anc, rec, out);
		if (rc == WALK_FOUND)
			snprintf(out->policy_domain,
			    sizeof(out->policy_domain), "%s", anc);
		if (rc != WALK_NONE)
			return rc;
	}
	return WALK_NONE;
}

size_t
authn_dmarc_dkim_from(const struct authn_dkim_verdict *v,
    struct authn_dmarc_dkim *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; v != NULL && i < v->n && n < max; i++) {
		out[n].domain = v->sigs[i].domain;
		/* An l= signature that leaves part of the body unsigned does
		 * not vouch for the message (anything may be appended). */
		out[n].is_pass = v->sigs[i].result == AUTHN_DKIM_PASS &&
		    v->sigs[i].unsigned_tail == 0;
		out[n].is_temperror = v->sigs[i].result ==
		    AUTHN_DKIM_TEMPERROR;
		n++;
	}
	return n;
}

/* ---- Alignment and the verdict ---------------------------------------- */

static bool
is_aligned(const struct authn_psl *psl, const char *from,
    const char *from_org, const char *d, bool is_strict)
{
	char org[AUTHN_DOMAIN_MAX + 1];
	size_t n;

	if (d == NULL || *d == '\0')
		return false;
	n = strlen(d);
	if (d[n - 1] == '.')
		n--;
	if (is_strict)
		return strlen(from) == n && strncasecmp(from, d, n) == 0;
	if (authn_psl_org_domain(psl, d, org, sizeof(org)) < 0)
		return false;
	return strcmp(org, from_org) == 0;
}

/* Whether an identity that would align with From: could not be checked:
 * SPF temperror for an aligned MAIL FROM domain, or a DKIM temperror for
 * an aligned d=. An identity that could not align does not matter. */
static bool
is_alignment_unknown(const struct authn_dmarc_request *req,
    const struct authn_dmarc_outcome *out,
    const struct authn_dmarc_record *rec)
{
	if (req->spf == AUTHN_SPF_TEMPERROR && req->spf_domain != NULL &&
	    is_aligned(req->psl, out->from_domain, out->org_domain,
	    req->spf_domain, rec->is_aspf_strict))
		return true;
	for (size_t i = 0; i < req->ndkim && i < AUTHN_DMARC_DKIM_MAX; i++) {
		const struct authn_dmarc_dkim *k = &req->dkim[i];

		if (k->is_temperror && is_aligned(req->psl, out->from_domain,
		    out->org_domain, k->domain, rec->is_adkim_strict))
			return true;
	}
	return false;
}

static enum authn_dmarc_policy
policy_soften(enum authn_dmarc_policy p)
{
	if (p == AUTHN_DMARC_POLICY_REJECT)
		return AUTHN_DMARC_POLICY_QUARANTINE;
	return AUTHN_DMARC_POLICY_NONE;
}

void
authn_dmarc_check(const struct authn_dns *dns,
    const struct authn_dmarc_request *req, struct authn_dmarc_outcome *out)
{
	struct authn_dmarc_record *rec = &out->record;
	const char *from = req->from_domain ? req->from_domain : "";
	size_t n = strlen(from);
	enum walk_rc rc;

	memset(out, 0, sizeof(*out));
	out->policy_tag = "p";
	if (n > 0 && from[n - 1] == '.')
		n--;
	if (n == 0 || n > AUTHN_DOMAIN_MAX || !is_spf_domain_ok(from, false)) {
		out->result = AUTHN_DMARC_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "no usable author "
		    "domain");
		return;
	}
	for (size_t i = 0; i < n; i++)
		out->from_domain[i] = (char)tolower((unsigned char)from[i]);
	out->from_domain[n] = '\0';
	if (authn_psl_org_domain(req->psl, out->from_domain, out->org_domain,
	    sizeof(out->org_domain)) < 0) {
		out->result = AUTHN_DMARC_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "no organizational "
		    "domain for %s", out->from_domain);
		return;
	}
	rc = policy_discover(dns, out->from_domain, rec, out);
	if (rc == WALK_TEMP) {
		out->result = AUTHN_DMARC_TEMPERROR;
		return;
	}
	if (rc == WALK_NONE) {
		out->result = AUTHN_DMARC_NONE;
		snprintf(out->reason, sizeof(out->reason), "no DMARC record "
		    "for %s or its parents", out->from_domain);
		return;
	}
	out->has_record = true;
	out->policy = rec->p;
	if (strcmp(out->policy_domain, out->from_domain) != 0) {
		/* A parent's record: sp= for a subdomain, np= for one that
		 * does not exist (DMARCbis), else p=. */
		if (rec->np != AUTHN_DMARC_POLICY_UNSET &&
		    !is_domain_existing(dns, out->from_domain, out)) {
			out->policy_tag = "np";
			out->policy = rec->np;
		} else if (rec->sp != AUTHN_DMARC_POLICY_UNSET) {
			out->policy_tag = "sp";
			out->policy = rec->sp;
		}
	}
	if (req->spf == AUTHN_SPF_PASS)
		out->is_spf_aligned = is_aligned(req->psl, out->from_domain,
		    out->org_domain, req->spf_domain, rec->is_aspf_strict);
	for (size_t i = 0; i < req->ndkim && i < AUTHN_DMARC_DKIM_MAX; i++) {
		const struct authn_dmarc_dkim *k = &req->dkim[i];

		if (k->is_pass && is_aligned(req->psl, out->from_domain,
		    out->org_domain, k->domain, rec->is_adkim_strict)) {
			out->is_dkim_aligned = true;
			snprintf(out->dkim_domain, sizeof(out->dkim_domain),
			    "%s", k->domain);
			break;
		}
	}
	if (out->is_spf_aligned || out->is_dkim_aligned) {
		out->result = AUTHN_DMARC_PASS;
		out->disposition = AUTHN_DMARC_POLICY_NONE;
		snprintf(out->reason, sizeof(out->reason), "%s%s%s aligned "
		    "with %s", out->is_spf_aligned ? "SPF" : "",
		    out->is_spf_aligned && out->is_dkim_aligned ? " and " : "",
		    out->is_dkim_aligned ? "DKIM" : "", out->from_domain);
		return;
	}
	/* A lookup that failed for an identity that would have aligned
	 * leaves the answer open: temperror, never a fail that refuses mail
	 * for good (RFC 7489 §6.6.2: a transient error is not a fail). */
	if (is_alignment_unknown(req, out, rec)) {
		out->result = AUTHN_DMARC_TEMPERROR;
		out->disposition = AUTHN_DMARC_POLICY_NONE;
		snprintf(out->reason, sizeof(out->reason), "a DNS error left "
		    "the %s check of %s's aligned identity open",
		    req->spf == AUTHN_SPF_TEMPERROR ? "SPF" : "DKIM",
		    out->from_domain);
		return;
	}
	out->result = AUTHN_DMARC_FAIL;
	out->disposition = out->policy;
	/* §6.6.4: a message outside pct= gets the next policy down; t=y
	 * (DMARCbis) is the same as pct=0. */
	if (rec->is_testing || req->sample >= rec->pct) {
		out->is_sampled_out = true;
		out->disposition = policy_soften(out->policy);
	}
	snprintf(out->reason, sizeof(out->reason), "neither SPF (%s for %s) "
	    "nor DKIM aligned with %s", authn_spf_result_name(req->spf),
	    req->spf_domain ? req->spf_domain : "no domain",
	    out->from_domain);
}

void
authn_dmarc_comment(const struct authn_dmarc_outcome *o, char *out,
    size_t outlen)
{
	if (!o->has_record)
		snprintf(out, outlen, "%s", o->reason);
	else if (strcmp(o->policy_tag, "p") == 0)
		snprintf(out, outlen, "p=%s dis=%s",
		    authn_dmarc_policy_name(o->record.p),
		    authn_dmarc_policy_name(o->disposition));
	else	/* "p=reject sp=quarantine dis=none": the tag applied too */
		snprintf(out, outlen, "p=%s %s=%s dis=%s",
		    authn_dmarc_policy_name(o->record.p), o->policy_tag,
		    authn_dmarc_policy_name(o->policy),
		    authn_dmarc_policy_name(o->disposition));
}
