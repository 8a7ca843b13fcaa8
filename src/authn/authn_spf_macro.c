/*
 * authn_spf_macro: SPF macros (RFC 7208 §7): the syntax check the parser
 * runs on every domain-spec and modifier, and the expansion with its
 * transformers (a count of right-hand parts, reversal, delimiters) and
 * URL escaping for upper-case letters. Every expansion is bounded by
 * AUTHN_SPF_EXPAND_MAX; %{p} asks the DNS and counts as a lookup.
 */
#include "authn/authn_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/util.h"

#define DELIMITERS ".-+,/_="

static bool
is_letter_ok(char c, bool is_exp)
{
	c = (char)tolower((unsigned char)c);
	if (strchr("slodiphv", c) != NULL && c != '\0')
		return true;
	/* §7.2: c, r and t only in explanations. */
	return is_exp && c != '\0' && strchr("crt", c) != NULL;
}

/* Parses "%{...}" at s[i] (s[i] == '%', s[i + 1] == '{'). Returns the
 * index after "}", or 0 when malformed. */
static size_t
expand_parse(const char *s, size_t n, size_t i, bool is_exp, char *letter,
    unsigned *digits, bool *is_reverse, char *delims, size_t delims_cap)
{
	size_t j = i + 2, nd = 0, ndigits = 0;
	unsigned v = 0;

	if (j >= n || !is_letter_ok(s[j], is_exp))
		return 0;
	*letter = s[j++];
	while (j < n && s[j] >= '0' && s[j] <= '9') {
		if (v < 1000)
			v = v * 10 + (unsigned)(s[j] - '0');
		ndigits++;
		j++;
	}
	/* §7.1: the DIGIT transformer must be nonzero. */
	if (ndigits > 0 && v == 0)
		return 0;
	*digits = ndigits > 0 ? v : 0;
	*is_reverse = false;
	if (j < n && (s[j] == 'r' || s[j] == 'R')) {
		*is_reverse = true;
		j++;
	}
	while (j < n && s[j] != '\0' && strchr(DELIMITERS, s[j]) != NULL) {
		if (nd + 1 < delims_cap)
			delims[nd++] = s[j];
		j++;
	}
	delims[nd] = '\0';
	if (j >= n || s[j] != '}')
		return 0;
	return j + 1;
}

int
spf_macro_scan(const char *s, size_t n, bool is_exp, size_t *tail_out)
{
	size_t i = 0, tail = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			char letter, delims[16];
			unsigned digits;
			bool is_reverse;
			size_t next;

			if (i + 1 >= n)
				return -1;
			if (s[i + 1] == '%' || s[i + 1] == '_' ||
			    s[i + 1] == '-') {
				i += 2;
				tail = i;
				continue;
			}
			if (s[i + 1] != '{')
				return -1;
			next = expand_parse(s, n, i, is_exp, &letter, &digits,
			    &is_reverse, delims, sizeof(delims));
			if (next == 0)
				return -1;
			i = tail = next;
			continue;
		}
		/* macro-literal = %x21-24 / %x26-7E; explain-string also
		 * has SP (§7.1). */
		if (!((c >= 0x21 && c <= 0x7e) || (is_exp && c == ' ')))
			return -1;
		i++;
	}
	if (tail_out != NULL)
		*tail_out = tail;
	return 0;
}

int
spf_macro_check(const char *s, size_t n, bool is_exp)
{
	return spf_macro_scan(s, n, is_exp, NULL);
}

/* A bounded output string. */
struct out {
	char buf[AUTHN_SPF_EXPAND_MAX + 1];
	size_t len;
	bool is_over;
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	if (o->is_over || n > AUTHN_SPF_EXPAND_MAX - o->len) {
		o->is_over = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* §7.3: upper-case macro letters are URL-escaped (RFC 3986 unreserved
 * characters stay). */
static void
out_add_escaped(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char hex[4];

		if (isascii(c) && (isalnum(c) || strchr("-._~", c) != NULL)) {
			out_add(o, s + i, 1);
		} else {
			snprintf(hex, sizeof(hex), "%%%02X", c);
			out_add(o, hex, 3);
		}
	}
}

void
spf_domain_truncate(char *name)
{
	size_t len = strlen(name);
	size_t eff = len > 0 && name[len - 1] == '.' ? len - 1 : len;
	char *p = name;

	/* §4.8: drop whole labels from the left until it fits in 253. */
	while (eff > 253) {
		char *dot = memchr(p, '.', eff);

		if (dot == NULL)
			break;
		eff -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (p != name)
		memmove(name, p, strlen(p) + 1);
}

/* %{p}: the validated name, preferring domain itself or one of its
 * subdomains (§7.3); "unknown" when none. */
static char *
macro_p(struct spf_eval *ev, const char *domain, enum spf_err *err)
{
	char **names, *v = NULL;
	size_t n;

	/* §4.6.4: %{p} counts as a lookup. */
	if ((*err = spf_lookup_count(ev)) < 0)
		return NULL;
	n = spf_ptr_validated(ev, &names);
	if (ev->voids > AUTHN_SPF_VOID_MAX) {
		spf_rrs_free(names, n);
		*err = SPF_PERM;
		return NULL;
	}
	for (size_t i = 0; i < n && v == NULL; i++) {
		if (strcasecmp(names[i], domain) == 0)
			v = names[i];
	}
	for (size_t i = 0; i < n && v == NULL; i++) {
		size_t a = strlen(names[i]), b = strlen(domain);

		if (a > b && names[i][a - b - 1] == '.' &&
		    strcasecmp(names[i] + a - b, domain) == 0)
			v = names[i];
	}
	if (v == NULL && n > 0)
		v = names[0];
	v = xstrdup(v ? v : "unknown");
	spf_rrs_free(names, n);
	*err = SPF_OK;
	return v;
}

/* The value of a macro letter (lower case); caller frees. */
static char *
macro_value(struct spf_eval *ev, char letter, const char *domain,
    const char *sender, enum spf_err *err)
{
	const struct authn_spf_request *req = ev->req;
	const char *at = strrchr(sender, '@');

	*err = SPF_OK;
	switch (letter) {
	case 's':
		return xstrdup(sender);
	case 'l':
		return at ? xstrndup(sender, (size_t)(at - sender)) :
		    xstrdup("postmaster");
	case 'o':
		return xstrdup(at ? at + 1 : sender);
	case 'd':
		return xstrdup(domain);
	case 'i':
		if (ev->family == AF_INET6) {
			/* §7.3: IPv6 as dot-separated nibbles. */
			char v[64];
			size_t k = 0;

			for (int i = 0; i < 16; i++) {
				k += (size_t)snprintf(v + k, sizeof(v) - k,
				    "%x.%x%s", ev->ip[i] >> 4, ev->ip[i] & 0xf,
				    i < 15 ? "." : "");
			}
			return xstrdup(v);
		}
		return xstrdup(ev->ip_text);
	case 'c':
		return xstrdup(ev->ip_text);
	case 'p':
		return macro_p(ev, domain, err);
	case 'v':
		return xstrdup(ev->family == AF_INET ? "in-addr" : "ip6");
	case 'h':
		return xstrdup(req->helo && req->helo[0] ? req->helo :
		    "unknown");
	case 'r':
		return xstrdup(req->receiver && req->receiver[0] ?
		    req->receiver : "unknown");
	case 't':
		return xasprintf("%lld", (long long)req->now);
	default:
		panic("spf macro letter %c", letter);
	}
}

/* Applies the transformers (§7.3) and adds the result. */
static void
out_add_transformed(struct out *o, const char *v, unsigned digits,
    bool is_reverse, const char *delims, bool is_escaped)
{
	const char **parts;
	size_t *lens, np = 0, first;
	const char *p = v;
	struct out *t;

	if (delims[0] == '\0')
		delims = ".";
	/* A value longer than the output can hold ends the expansion. */
	if (strlen(v) >= AUTHN_SPF_EXPAND_MAX) {
		o->is_over = true;
		return;
	}
	parts = xcalloc(strlen(v) + 1, sizeof(*parts));
	lens = xcalloc(strlen(v) + 1, sizeof(*lens));
	for (;;) {
		size_t k = strcspn(p, delims);

		parts[np] = p;
		lens[np++] = k;
		if (p[k] == '\0')
			break;
		p += k + 1;
	}
	if (is_reverse) {
		for (size_t i = 0; i < np / 2; i++) {
			const char *tp = parts[i];
			size_t tl = lens[i];

			parts[i] = parts[np - 1 - i];
			lens[i] = lens[np - 1 - i];
			parts[np - 1 - i] = tp;
			lens[np - 1 - i] = tl;
		}
	}
	first = digits > 0 && digits < np ? np - digits : 0;
	t = xcalloc(1, sizeof(*t));
	for (size_t i = first; i < np; i++) {
		if (i > first)
			out_add(t, ".", 1);
		out_add(t, parts[i], lens[i]);
	}
	if (t->is_over)
		o->is_over = true;
	else if (is_escaped)
		out_add_escaped(o, t->buf, t->len);
	else
		out_add(o, t->buf, t->len);
	free(t);
	free(parts);
	free(lens);
}

char *
spf_expand(struct spf_eval *ev, const char *domain, const char *sender,
    const char *s, size_t n, bool is_exp, enum spf_err *err_out)
{
	struct out *o;
	size_t i = 0;
	char *result;

	*err_out = SPF_OK;
	if (spf_macro_check(s, n, is_exp) < 0) {
		*err_out = spf_fail(ev, SPF_PERM, "bad macro string '%.*s'",
		    (int)(n > 80 ? 80 : n), s);
		return NULL;
	}
	o = xcalloc(1, sizeof(*o));
	while (i < n && !o->is_over) {
		char letter, delims[16], *v;
		unsigned digits;
		bool is_reverse;
		size_t next;

		if (s[i] != '%') {
			size_t k = i;

			while (k < n && s[k] != '%')
				k++;
			out_add(o, s + i, k - i);
			i = k;
			continue;
		}
		if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') {
			/* §7.1: "%%" "%", "%_" a space, "%-" "%20". */
			out_add(o, s[i + 1] == '%' ? "%" : s[i + 1] == '_' ?
			    " " : "%20", s[i + 1] == '-' ? 3 : 1);
			i += 2;
			continue;
		}
		next = expand_parse(s, n, i, is_exp, &letter, &digits,
		    &is_reverse, delims, sizeof(delims));
		v = macro_value(ev, (char)tolower((unsigned char)letter),
		    domain, sender, err_out);
		if (v == NULL) {
			free(o);
			return NULL;
		}
		out_add_transformed(o, v, digits, is_reverse, delims,
		    isupper((unsigned char)letter));
		free(v);
		i = next;
	}
	if (o->is_over) {
		free(o);
		*err_out = spf_fail(ev, SPF_PERM, "macro expansion longer "
		    "than %d bytes", AUTHN_SPF_EXPAND_MAX);
		return NULL;
	}
	result = xstrndup(o->buf, o->len);
	free(o);
	return result;
}

char *
authn_spf_macro_expand(const struct authn_dns *dns,
    const struct authn_spf_request *req, const char *domain,
    const char *sender, const char *spec, size_t len, bool is_exp)
{
	struct spf_eval ev;
	enum spf_err err;
	char *r;

	if (spf_eval_init(&ev, dns, req) < 0)
		return NULL;
	r = spf_expand(&ev, domain, sender, spec, len, is_exp, &err);
	free(ev.reason);
	return r;
}
