/*
 * authn_dkim: DKIM verification (RFC 6376 §6, RFC 8463 ed25519-sha256,
 * RFC 8301 for the algorithms and key sizes accepted). A message's
 * signatures are read from its header section when that ends; the body
 * goes through one canonicalizer per signature as it arrives (nothing is
 * held); at the end each key is fetched through struct authn_dns and
 * each signature checked. Every input is bounded: AUTHN_DKIM_SIGS_MAX
 * signatures, AUTHN_DKIM_FIELDS_MAX fields, AUTHN_DKIM_H_MAX names in
 * h=, AUTHN_DKIM_TAGS_MAX tags, key records of AUTHN_DKIM_KEY_RECORD_MAX
 * bytes, RSA keys up to AUTHN_DKIM_KEY_BITS_MAX bits.
 */
#include "authn/authn_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/util.h"

const char *
authn_dkim_status_name(enum authn_dkim_status r)
{
	switch (r) {
	case AUTHN_DKIM_NONE:
		return "none";
	case AUTHN_DKIM_PASS:
		return "pass";
	case AUTHN_DKIM_FAIL:
		return "fail";
	case AUTHN_DKIM_NEUTRAL:
		return "neutral";
	case AUTHN_DKIM_POLICY:
		return "policy";
	case AUTHN_DKIM_TEMPERROR:
		return "temperror";
	case AUTHN_DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

struct field {
	const char *p;		/* in d->header */
	size_t len;		/* up to its last line's CRLF, excluded */
	size_t name_len;	/* the name, without white space */
};

struct name {
	const char *p;
	size_t len;
};

struct sig {
	struct authn_dkim_result *res;
	bool is_decided;	/* res->result is final (parse errors) */
	const struct field *field;
	bool is_ed25519;
	enum authn_dkim_canon hc, bc;
	struct name h[AUTHN_DKIM_H_MAX];
	size_t nh;
	unsigned char *b, *bh;
	size_t blen, bhlen;
	char auid_domain[256];	/* the domain of i= (or d=) */
	uint64_t l;		/* UINT64_MAX: no l= */
	/* Where b='s value lies in the field, to leave it out (§3.7). */
	size_t bval_start, bval_end;
	struct authn_sha256 *body_hash;
	struct authn_dkim_body body;
};

struct authn_dkim {
	char *header;
	size_t hlen;
	struct field *fields;
	size_t nfields;
	bool is_too_many_fields;
	struct sig sigs[AUTHN_DKIM_SIGS_MAX];
	struct authn_dkim_verdict v;
	time_t now;
	bool is_body_done;
};

static void
decide(struct sig *s, enum authn_dkim_status r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
decide(struct sig *s, enum authn_dkim_status r, const char *fmt, ...)
{
	va_list ap;

	s->res->result = r;
	s->is_decided = true;
	va_start(ap, fmt);
	vsnprintf(s->res->reason, sizeof(s->res->reason), fmt, ap);
	va_end(ap);
}

/* ---- The header section --------------------------------------------- */

static bool
is_field_named(const struct field *f, const char *name, size_t nl)
{
	return f->name_len == nl && strncasecmp(f->p, name, nl) == 0;
}

/* Splits the header (up to the empty line) into fields, at most max. */
static size_t
fields_split(const char *h, size_t len, struct field *f, size_t max,
    bool *is_over)
{
	size_t n = 0, i = 0;

	*is_over = false;
	while (i < len) {
		size_t start = i, end, k;

		for (;;) {
			const char *nl = memchr(h + i, '\n', len - i);

			if (nl == NULL) {
				i = len;
				end = len;
				break;
			}
			end = (size_t)(nl - h);
			i = end + 1;
			if (i >= len || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		if (end > start && h[end - 1] == '\r')
			end--;
		if (end == start)
			break;	/* the empty line: the body follows */
		if (n == max) {
			*is_over = true;
			break;
		}
		f[n].p = h + start;
		f[n].len = end - start;
		for (k = 0; k < f[n].len && f[n].p[k] != ':' &&
		    f[n].p[k] != ' ' && f[n].p[k] != '\t'; k++)
			;
		f[n].name_len = k;
		while (k < f[n].len && (f[n].p[k] == ' ' || f[n].p[k] == '\t'))
			k++;
		if (k == f[n].len || f[n].p[k] != ':')
			f[n].name_len = 0;	/* no colon: not a field */
		n++;
	}
	return n;
}

/* ---- Reading a signature (§3.5, §6.1.1) ----------------------------- */

/* Copies the tag's value into out (NUL-terminated) without any white
 * space; false when it does not fit. */
static bool
value_copy_nows(const struct authn_dkim_tag *t, char *out, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (o + 1 >= n)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* base64 with folding white space in it (§2.4). */
static unsigned char *
b64_decode_fws(const struct authn_dkim_tag *t, size_t *n_out)
{
	char *s = xmalloc(t->value_len + 1);
	unsigned char *out;

	if (!value_copy_nows(t, s, t->value_len + 1)) {
		free(s);
		return NULL;
	}
	out = base64_decode(s, strlen(s), false, n_out);
	free(s);
	return out;
}

/* A domain name we may ask the DNS about: LDH labels (and "_"), 1-63
 * bytes each, 253 in all, at least two labels. Lowercases it. */
static bool
is_domain_ok(char *d)
{
	size_t n = strlen(d), label = 0, labels = 1;

	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return false;
	for (char *p = d; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return labels >= 2;
}

static bool
is_selector_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((!isalnum((unsigned char)*s) && *s != '-' &&
		    *s != '_') || ++label > 63) {
			return false;
		}
	}
	return true;
}

/* Is sub the domain d or below it? */
static bool
is_subdomain(const char *sub, const char *d)
{
	size_t ns = strlen(sub), nd = strlen(d);

	if (ns == nd)
		return strcasecmp(sub, d) == 0;
	return ns > nd && sub[ns - nd - 1] == '.' &&
	    strcasecmp(sub + ns - nd, d) == 0;
}

static void
sig_parse(struct authn_dkim *d, struct sig *s)
{
	struct authn_dkim_tag tags[AUTHN_DKIM_TAGS_MAX];
	const struct authn_dkim_tag *t;
	const struct field *f = s->field;
	const char *value;
	char err[160], buf[256];
	size_t colon;
	int n;

	s->l = UINT64_MAX;
	for (colon = 0; colon < f->len && f->p[colon] != ':'; colon++)
		;
	if (colon == f->len) {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: no colon");
		return;
	}
	value = f->p + colon + 1;
	n = authn_dkim_tags_parse(value, f->len - colon - 1, tags,
	    AUTHN_DKIM_TAGS_MAX, err, sizeof(err));
	if (n < 0) {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: %s", err);
		return;
	}
	/* d= and s= first, for the result's names even on errors. */
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "d")) != NULL &&
	    value_copy_nows(t, buf, sizeof(s->res->domain))) {
		if (is_domain_ok(buf))
			memcpy(s->res->domain, buf, strlen(buf) + 1);
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "s")) != NULL &&
	    value_copy_nows(t, buf, sizeof(s->res->selector))) {
		if (is_selector_ok(buf))
			memcpy(s->res->selector, buf, strlen(buf) + 1);
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "b")) != NULL) {
		size_t o = 0;

		s->bval_start = (size_t)(t->value - f->p);
		/* §3.7: the value goes, up to the ';' or the end (the
		 * white space after it too, as dkimpy and OpenDKIM read
		 * "including all surrounding whitespace"). */
		s->bval_end = s->bval_start;
		while (s->bval_end < f->len && f->p[s->bval_end] != ';')
			s->bval_end++;
		for (size_t i = 0; i < t->value_len && o < 8; i++) {
			if (!strchr(" \t\r\n", t->value[i]))
				s->res->b[o++] = t->value[i];
		}
		s->res->b[o] = '\0';
	}
	/* §6.1.1: every required tag, v=1 first. */
	t = authn_dkim_tag_find(tags, (size_t)n, "v");
	if (t == NULL || t->value_len != 1 || t->value[0] != '1') {
		decide(s, AUTHN_DKIM_PERMERROR, t == NULL ? "signature: no v= "
		    "tag" : "signature: unknown version v=%.*s",
		    t ? (int)(t->value_len > 20 ? 20 : t->value_len) : 0,
		    t ? t->value : "");
		return;
	}
	static const char *const required[] = { "a", "b", "bh", "d", "h",
	    "s" };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (authn_dkim_tag_find(tags, (size_t)n, required[i]) ==
		    NULL) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: no %s= "
			    "tag", required[i]);
			return;
		}
	}
	if (s->res->domain[0] == '\0') {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: d= is not a "
		    "domain name");
		return;
	}
	if (s->res->selector[0] == '\0') {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: s= is not a "
		    "selector");
		return;
	}
	t = authn_dkim_tag_find(tags, (size_t)n, "a");
	if (!value_copy_nows(t, buf, sizeof(s->res->algorithm)))
		buf[0] = '\0';
	/* buf holds at most sizeof(algorithm) - 1 bytes: this never cuts. */
	if (snprintf(s->res->algorithm, sizeof(s->res->algorithm), "%s",
	    buf) >= (int)sizeof(s->res->algorithm))
		s->res->algorithm[0] = '\0';
	if (strcasecmp(buf, "rsa-sha256") == 0) {
		s->is_ed25519 = false;
	} else if (strcasecmp(buf, "ed25519-sha256") == 0) {
		s->is_ed25519 = true;
	} else if (strcasecmp(buf, "rsa-sha1") == 0) {
		/* RFC 8301 §3.1: MUST NOT be considered valid. */
		decide(s, AUTHN_DKIM_PERMERROR, "signature: rsa-sha1 is no "
		    "longer accepted (RFC 8301)");
		return;
	} else {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: unknown "
		    "algorithm a=%.30s", buf);
		return;
	}
	s->hc = s->bc = AUTHN_DKIM_SIMPLE;
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "c")) != NULL) {
		char *slash;

		if (!value_copy_nows(t, buf, 32)) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: bad c=");
			return;
		}
		slash = strchr(buf, '/');
		if (slash != NULL)
			*slash++ = '\0';
		for (int k = 0; k < 2; k++) {
			const char *c = k == 0 ? buf : slash;
			enum authn_dkim_canon *to = k == 0 ? &s->hc : &s->bc;

			if (c == NULL)
				continue;
			if (strcasecmp(c, "simple") == 0) {
				*to = AUTHN_DKIM_SIMPLE;
			} else if (strcasecmp(c, "relaxed") == 0) {
				*to = AUTHN_DKIM_RELAXED;
			} else {
				decide(s, AUTHN_DKIM_PERMERROR, "signature: "
				    "unknown canonicalization c=%.30s",
				    t->value);
				return;
			}
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "q")) != NULL) {
		/* §3.5: colon-separated; dns/txt is the one defined. */
		if (!value_copy_nows(t, buf, sizeof(buf)) ||
		    strstr(buf, "dns/txt") == NULL) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: no query "
			    "method we know in q=");
			return;
		}
	}
	/* h=: names separated by ':', From among them (§5.4). */
	t = authn_dkim_tag_find(tags, (size_t)n, "h");
	{
		bool has_from = false;
		size_t i = 0;

		while (i <= t->value_len) {
			size_t start, end;

			while (i < t->value_len &&
			    strchr(" \t\r\n", t->value[i]))
				i++;
			start = i;
			while (i < t->value_len && t->value[i] != ':')
				i++;
			end = i;
			while (end > start && strchr(" \t\r\n",
			    t->value[end - 1]))
				end--;
			if (end == start) {
				decide(s, AUTHN_DKIM_PERMERROR, "signature: "
				    "empty name in h=");
				return;
			}
			if (s->nh == AUTHN_DKIM_H_MAX) {
				decide(s, AUTHN_DKIM_PERMERROR, "signature: "
				    "more than %d names in h=",
				    AUTHN_DKIM_H_MAX);
				return;
			}
			s->h[s->nh].p = t->value + start;
			s->h[s->nh].len = end - start;
			if (end - start == 4 &&
			    strncasecmp(t->value + start, "from", 4) == 0)
				has_from = true;
			s->nh++;
			i++;
		}
		if (!has_from) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: h= does not "
			    "name From");
			return;
		}
	}
	t = authn_dkim_tag_find(tags, (size_t)n, "bh");
	s->bh = b64_decode_fws(t, &s->bhlen);
	t = authn_dkim_tag_find(tags, (size_t)n, "b");
	s->b = b64_decode_fws(t, &s->blen);
	if (s->bh == NULL || s->b == NULL || s->blen == 0) {
		decide(s, AUTHN_DKIM_PERMERROR, "signature: b= or bh= is not "
		    "base64");
		return;
	}
	/* i=: the AUID, in d= or below it (§3.5). */
	snprintf(s->auid_domain, sizeof(s->auid_domain), "%s",
	    s->res->domain);
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "i")) != NULL) {
		const char *at = memchr(t->value, '@', t->value_len);
		size_t dl;

		dl = at ? t->value_len - (size_t)(at + 1 - t->value) : 0;
		if (at == NULL || dl == 0 || dl >= sizeof(s->auid_domain)) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: i= is not "
			    "an identity");
			return;
		}
		memcpy(s->auid_domain, at + 1, dl);
		s->auid_domain[dl] = '\0';
		if (!is_subdomain(s->auid_domain, s->res->domain)) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: i= domain "
			    "%.60s is not d= or below it", s->auid_domain);
			return;
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "l")) != NULL) {
		uint64_t l = 0;

		if (t->value_len == 0 || t->value_len > 76) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: bad l=");
			return;
		}
		for (size_t i = 0; i < t->value_len; i++) {
			if (!isdigit((unsigned char)t->value[i])) {
				decide(s, AUTHN_DKIM_PERMERROR, "signature: "
				    "bad l=");
				return;
			}
			if (l > (UINT64_MAX - 10) / 10)
				l = UINT64_MAX - 1;	/* no body is that long */
			else
				l = l * 10 + (uint64_t)(t->value[i] - '0');
		}
		s->l = l;
		s->res->has_length = true;
	}
	{
		const struct authn_dkim_tag *tt, *tx;
		long long tv = -1, xv = -1;

		tt = authn_dkim_tag_find(tags, (size_t)n, "t");
		tx = authn_dkim_tag_find(tags, (size_t)n, "x");
		for (int k = 0; k < 2; k++) {
			const struct authn_dkim_tag *q = k == 0 ? tt : tx;
			long long *to = k == 0 ? &tv : &xv;
			char *end;

			if (q == NULL)
				continue;
			if (!value_copy_nows(q, buf, 24) || buf[0] < '0' ||
			    buf[0] > '9' || (*to = strtoll(buf, &end, 10),
			    *end != '\0')) {
				decide(s, AUTHN_DKIM_PERMERROR, "signature: bad "
				    "%s=", k == 0 ? "t" : "x");
				return;
			}
		}
		if (tv >= 0 && xv >= 0 && xv < tv) {
			decide(s, AUTHN_DKIM_PERMERROR, "signature: x= is "
			    "before t=");
			return;
		}
		if (xv >= 0 && (long long)d->now > xv) {
			/* §3.5 x=, §6.1.1: expired. */
			decide(s, AUTHN_DKIM_FAIL, "signature expired at %lld",
			    xv);
			return;
		}
	}
	if (s->bhlen != 32) {
		decide(s, AUTHN_DKIM_FAIL, "body hash of %zu bytes, not "
		    "SHA-256's 32", s->bhlen);
		return;
	}
	s->body_hash = authn_sha256_new();
	authn_dkim_body_init(&s->body, s->bc, s->l, authn_sha256_update,
	    s->body_hash);
}

bool
is_authn_dkim_signed(const char *h, size_t len)
{
	static const char name[] = "DKIM-Signature";
	size_t nl = sizeof(name) - 1;

	for (size_t i = 0; i + nl < len;) {
		const char *eol;

		if (strncasecmp(h + i, name, nl) == 0 && (h[i + nl] == ':' ||
		    h[i + nl] == ' ' || h[i + nl] == '\t'))
			return true;
		eol = memchr(h + i, '\n', len - i);
		if (eol == NULL)
			break;
		i = (size_t)(eol - h) + 1;
	}
	return false;
}

struct authn_dkim *
authn_dkim_new(const char *header, size_t len, time_t now)
{
	struct authn_dkim *d;
	size_t nsig = 0;

	/* A quick look before anything is copied: most mail in some
	 * places is not signed. */
	if (!is_authn_dkim_signed(header, len))
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->header = xmalloc(len + 1);
	memcpy(d->header, header, len);
	d->header[len] = '\0';
	d->hlen = len;
	d->now = now;
	d->fields = xcalloc(AUTHN_DKIM_FIELDS_MAX, sizeof(*d->fields));
	d->nfields = fields_split(d->header, len, d->fields,
	    AUTHN_DKIM_FIELDS_MAX, &d->is_too_many_fields);
	for (size_t i = 0; i < d->nfields; i++) {
		struct sig *s;

		if (!is_field_named(&d->fields[i], "DKIM-Signature", 14))
			continue;
		if (nsig == AUTHN_DKIM_SIGS_MAX) {
			d->v.ignored++;
			continue;
		}
		s = &d->sigs[nsig];
		s->res = &d->v.sigs[nsig];
		s->field = &d->fields[i];
		nsig++;
		if (d->is_too_many_fields) {
			decide(s, AUTHN_DKIM_PERMERROR, "more than %d header "
			    "fields", AUTHN_DKIM_FIELDS_MAX);
			continue;
		}
		sig_parse(d, s);
	}
	d->v.n = nsig;
	if (nsig == 0) {
		authn_dkim_free(&d);
		return NULL;
	}
	return d;
}

void
authn_dkim_body(struct authn_dkim *d, const void *data, size_t len)
{
	for (size_t i = 0; i < d->v.n; i++) {
		struct sig *s = &d->sigs[i];

		if (s->body_hash != NULL)
			authn_dkim_body_update(&s->body, data, len);
	}
}

void
authn_dkim_free(struct authn_dkim **dp)
{
	struct authn_dkim *d = *dp;

	if (d == NULL)
		return;
	for (size_t i = 0; i < AUTHN_DKIM_SIGS_MAX; i++) {
		free(d->sigs[i].b);
		free(d->sigs[i].bh);
		authn_sha256_free(&d->sigs[i].body_hash);
	}
	free(d->fields);
	free(d->header);
	free(d);
	*dp = NULL;
}

/* ---- The key (§3.6) ------------------------------------------------- */

struct key {
	bool is_ed25519;
	bool is_testing;	/* t=y */
	bool is_strict;		/* t=s */
	unsigned char *p;	/* NULL with is_revoked */
	size_t plen;
	bool is_revoked;
};

/* Reads one key record; returns 0, or -1 with why in err. */
static int
key_parse(const char *rec, struct key *k, char *err, size_t errlen)
{
	struct authn_dkim_tag tags[AUTHN_DKIM_TAGS_MAX];
	const struct authn_dkim_tag *t;
	char buf[256];
	int n;

	memset(k, 0, sizeof(*k));
	if (strlen(rec) > AUTHN_DKIM_KEY_RECORD_MAX) {
		snprintf(err, errlen, "key record longer than %d bytes",
		    AUTHN_DKIM_KEY_RECORD_MAX);
		return -1;
	}
	n = authn_dkim_tags_parse(rec, strlen(rec), tags, AUTHN_DKIM_TAGS_MAX,
	    err, errlen);
	if (n < 0)
		return -1;
	/* v=DKIM1, if there, first (§3.6.1). */
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "v")) != NULL &&
	    (t != &tags[0] || t->value_len != 5 ||
	    memcmp(t->value, "DKIM1", 5) != 0)) {
		snprintf(err, errlen, "key record: bad v= (DKIM1, first)");
		return -1;
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "k")) != NULL) {
		if (!value_copy_nows(t, buf, 32)) {
			snprintf(err, errlen, "key record: bad k=");
			return -1;
		}
		if (strcasecmp(buf, "ed25519") == 0) {
			k->is_ed25519 = true;
		} else if (strcasecmp(buf, "rsa") != 0) {
			snprintf(err, errlen, "key record: unknown key type "
			    "k=%.30s", buf);
			return -1;
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "h")) != NULL) {
		/* The hash algorithms the key may be used with. */
		bool has_sha256 = false;

		if (value_copy_nows(t, buf, sizeof(buf))) {
			for (char *save = NULL, *a = strtok_r(buf, ":", &save);
			    a != NULL; a = strtok_r(NULL, ":", &save))
				has_sha256 |= strcasecmp(a, "sha256") == 0;
		}
		if (!has_sha256) {
			snprintf(err, errlen, "key record: h= does not allow "
			    "sha256");
			return -1;
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "s")) != NULL) {
		bool is_ok = false;

		if (value_copy_nows(t, buf, sizeof(buf))) {
			for (char *save = NULL, *a = strtok_r(buf, ":", &save);
			    a != NULL; a = strtok_r(NULL, ":", &save))
				is_ok |= strcmp(a, "*") == 0 ||
				    strcasecmp(a, "email") == 0;
		}
		if (!is_ok) {
			snprintf(err, errlen, "key record: not for email "
			    "(s=)");
			return -1;
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "t")) != NULL &&
	    value_copy_nows(t, buf, sizeof(buf))) {
		for (char *save = NULL, *a = strtok_r(buf, ":", &save);
		    a != NULL; a = strtok_r(NULL, ":", &save)) {
			k->is_testing |= strcmp(a, "y") == 0;
			k->is_strict |= strcmp(a, "s") == 0;
		}
	}
	if ((t = authn_dkim_tag_find(tags, (size_t)n, "p")) == NULL) {
		snprintf(err, errlen, "key record: no p= tag");
		return -1;
	}
	{
		size_t nows = 0;

		for (size_t i = 0; i < t->value_len; i++)
			nows += !strchr(" \t\r\n", t->value[i]);
		if (nows == 0) {
			k->is_revoked = true;	/* §3.6.1: p= empty */
			return 0;
		}
	}
	k->p = b64_decode_fws(t, &k->plen);
	if (k->p == NULL) {
		snprintf(err, errlen, "key record: p= is not base64");
		return -1;
	}
	return 0;
}

/* Fetches the key of s; decides s on any trouble. Returns 0 with *k. */
static int
key_fetch(struct sig *s, const struct authn_dns *dns, struct key *k)
{
	char name[512], err[160] = "";
	char **rrs = NULL;
	size_t n = 0;
	enum authn_dns_rc rc;
	int found = -1;

	snprintf(name, sizeof(name), "%s._domainkey.%s", s->res->selector,
	    s->res->domain);
	if (strlen(name) > 253) {
		decide(s, AUTHN_DKIM_PERMERROR, "key name longer than 253 "
		    "bytes");
		return -1;
	}
	rc = dns->query(dns->arg, AUTHN_DNS_TXT, name, &rrs, &n);
	if (rc == AUTHN_DNS_FAIL) {
		decide(s, AUTHN_DKIM_TEMPERROR, "key %s: DNS error", name);
		return -1;
	}
	if (rc != AUTHN_DNS_OK) {
		decide(s, AUTHN_DKIM_PERMERROR, "no key at %s", name);
		return -1;
	}
	/* §3.6.2.2: several records; the first that reads is used. */
	for (size_t i = 0; i < n && found < 0; i++) {
		if (key_parse(rrs[i], k, err, sizeof(err)) == 0)
			found = 0;
	}
	for (size_t i = 0; i < n; i++)
		free(rrs[i]);
	free(rrs);
	if (found < 0) {
		decide(s, AUTHN_DKIM_PERMERROR, "%s", err);
		return -1;
	}
	s->res->is_testing = k->is_testing;
	return 0;
}

/* ---- The check (§6.1.3) --------------------------------------------- */

struct text {
	char *p;
	size_t len, cap;
};

static void
text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = xrealloc(t->p, t->cap);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void
field_canon_add(struct text *t, enum authn_dkim_canon c, const char *f,
    size_t len, bool has_crlf)
{
	if (c == AUTHN_DKIM_RELAXED) {
		char *r = authn_dkim_header_relaxed(f, len);

		text_add(t, r, strlen(r));
		free(r);
	} else {
		text_add(t, f, len);
	}
	if (has_crlf)
		text_add(t, "\r\n", 2);
}

/* The SHA-256 of the header data of §3.7: the fields h= names, each
 * instance taken from the bottom up (a name given more often than the
 * message has it signs its absence), then the signature field with b=
 * empty and no CRLF. */
static void
header_hash(const struct authn_dkim *d, const struct sig *s,
    unsigned char out[32])
{
	bool used[AUTHN_DKIM_FIELDS_MAX];
	struct text t = { 0 };
	struct authn_sha256 *h;
	char *sigf;
	size_t sl;

	memset(used, 0, d->nfields * sizeof(used[0]));
	for (size_t k = 0; k < s->nh; k++) {
		for (size_t i = d->nfields; i-- > 0;) {
			if (used[i] || !is_field_named(&d->fields[i],
			    s->h[k].p, s->h[k].len))
				continue;
			used[i] = true;
			field_canon_add(&t, s->hc, d->fields[i].p,
			    d->fields[i].len, true);
			break;
		}
	}
	sl = s->field->len - (s->bval_end - s->bval_start);
	sigf = xmalloc(sl + 1);
	memcpy(sigf, s->field->p, s->bval_start);
	memcpy(sigf + s->bval_start, s->field->p + s->bval_end,
	    s->field->len - s->bval_end);
	sigf[sl] = '\0';
	field_canon_add(&t, s->hc, sigf, sl, false);
	free(sigf);
	h = authn_sha256_new();
	authn_sha256_update(h, t.p, t.len);
	authn_sha256_final(&h, out);
	free(t.p);
}

static void
sig_check(struct authn_dkim *d, struct sig *s, const struct authn_dns *dns)
{
	unsigned char bh[32], hh[32];
	struct key k;
	unsigned bits;
	enum authn_verify_rc rc;

	authn_sha256_final(&s->body_hash, bh);
	if (key_fetch(s, dns, &k) < 0)
		return;
	if (k.is_revoked) {
		decide(s, AUTHN_DKIM_FAIL, "key revoked (empty p=)");
		goto out;
	}
	if (k.is_ed25519 != s->is_ed25519) {
		decide(s, AUTHN_DKIM_FAIL, "key type %s does not match a=%s",
		    k.is_ed25519 ? "ed25519" : "rsa", s->res->algorithm);
		goto out;
	}
	if (k.is_strict && strcasecmp(s->auid_domain, s->res->domain) != 0) {
		/* §3.6.1 t=s: i= must be in d= itself. */
		decide(s, AUTHN_DKIM_FAIL, "key is strict (t=s) but i= "
		    "domain %.60s is not d=", s->auid_domain);
		goto out;
	}
	header_hash(d, s, hh);
	rc = authn_crypto_verify(k.is_ed25519 ? AUTHN_KEY_ED25519 :
	    AUTHN_KEY_RSA, k.p, k.plen, AUTHN_DKIM_KEY_BITS_MAX, hh, s->b,
	    s->blen, &bits);
	if (rc == AUTHN_VERIFY_KEY) {
		decide(s, AUTHN_DKIM_PERMERROR, "key record: p= is not a "
		    "%s public key", k.is_ed25519 ? "ed25519" : "RSA");
	} else if (rc == AUTHN_VERIFY_KEY_SIZE) {
		decide(s, AUTHN_DKIM_PERMERROR, "RSA key of %u bits, more "
		    "than %d", bits, AUTHN_DKIM_KEY_BITS_MAX);
	} else if (rc == AUTHN_VERIFY_BAD) {
		decide(s, AUTHN_DKIM_FAIL, "signature does not verify "
		    "(header changed, or wrong key)");
	} else if (memcmp(bh, s->bh, 32) != 0) {
		decide(s, AUTHN_DKIM_FAIL, "body hash does not match (body "
		    "changed)");
	} else if (s->l != UINT64_MAX && s->l > s->body.length) {
		decide(s, AUTHN_DKIM_FAIL, "l=%llu is longer than the body "
		    "(%llu bytes)", (unsigned long long)s->l,
		    (unsigned long long)s->body.length);
	} else if (!k.is_ed25519 && bits < AUTHN_DKIM_KEY_BITS_MIN) {
		/* RFC 8301 §3.2: verifiers MUST NOT accept them. */
		decide(s, AUTHN_DKIM_POLICY, "RSA key of %u bits, less than "
		    "%d", bits, AUTHN_DKIM_KEY_BITS_MIN);
	} else {
		if (s->l != UINT64_MAX)
			s->res->unsigned_tail = s->body.length - s->l;
		decide(s, AUTHN_DKIM_PASS, "signature verified");
	}
out:
	if (k.is_testing && s->res->result == AUTHN_DKIM_FAIL) {
		/* §3.6.1 t=y: a test key's failure counts as unsigned. */
		char why[sizeof(s->res->reason)];

		snprintf(why, sizeof(why), "%s", s->res->reason);
		decide(s, AUTHN_DKIM_NEUTRAL, "testing key: %.140s", why);
	}
	free(k.p);
}

void
authn_dkim_verify(struct authn_dkim *d, const struct authn_dns *dns,
    struct authn_dkim_verdict *v)
{
	for (size_t i = 0; i < d->v.n; i++) {
		struct sig *s = &d->sigs[i];

		if (s->body_hash != NULL)
			authn_dkim_body_final(&s->body);
	}
	for (size_t i = 0; i < d->v.n; i++) {
		struct sig *s = &d->sigs[i];

		if (!s->is_decided)
			sig_check(d, s, dns);
	}
	*v = d->v;
}

/* ---- Authentication-Results (RFC 8601 §2.7.1, RFC 6008) ------------- */

void
authn_dkim_ar_add(struct authn_ar *ar, const struct authn_dkim_verdict *v)
{
	if (v->n == 0) {
		authn_ar_add(ar, "dkim", "none", NULL, NULL, NULL);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct authn_dkim_result *r = &v->sigs[i];
		char comment[256];

		/* No ";" in a comment: readers that split resinfo at
		 * every ";" are common. */
		snprintf(comment, sizeof(comment), "%s%s%s", r->reason,
		    r->is_testing && r->result != AUTHN_DKIM_NEUTRAL ?
		    ", testing key" : "", r->unsigned_tail > 0 ?
		    ", unsigned body tail of " : "");
		if (r->unsigned_tail > 0)
			snprintf(comment + strlen(comment),
			    sizeof(comment) - strlen(comment), "%llu bytes "
			    "after l=", (unsigned long long)r->unsigned_tail);
		const char *props[] = { "header.d", "header.s",
		    "header.b" };
		const char *values[] = { r->domain[0] ? r->domain : "unknown",
		    r->selector[0] ? r->selector : "unknown",
		    r->b[0] ? r->b : "none" };

		authn_ar_add_props(ar, "dkim",
		    authn_dkim_status_name(r->result), comment, props, values,
		    3);
	}
}
