/*
 * authn_ar: the Authentication-Results header field (RFC 8601). One
 * builder for every method (spf today; dkim, dmarc, arc later), and the
 * removal of fields that claim our authserv-id (§5) from a received
 * header section.
 */
#include "authn/authn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define AR_RESULTS_MAX 32

struct authn_ar {
	char *authserv_id;
	char *results[AR_RESULTS_MAX];
	size_t n;
};

struct authn_ar *
authn_ar_new(const char *authserv_id)
{
	struct authn_ar *ar = xcalloc(1, sizeof(*ar));

	ar->authserv_id = xstrdup(authserv_id);
	return ar;
}

void
authn_ar_free(struct authn_ar **arp)
{
	struct authn_ar *ar = *arp;

	if (ar == NULL)
		return;
	for (size_t i = 0; i < ar->n; i++)
		free(ar->results[i]);
	free(ar->authserv_id);
	free(ar);
	*arp = NULL;
}

/* RFC 2045 token characters, and "@" and "." for an addr-spec. */
static bool
is_bare_value(const char *v)
{
	if (*v == '\0')
		return false;
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c >= 0x7f || strchr("()<>,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* value = token / quoted-string; pvalue may also be [local-part "@"]
 * domain (RFC 8601 §2.2). Control characters become "?": they never
 * reach us from SMTP, but a header is no place for them. */
static char *
value_quote(const char *v)
{
	size_t n = strlen(v);
	char *q, *o;

	if (is_bare_value(v))
		return xstrdup(v);
	q = o = xmalloc(2 * n + 3);
	*o++ = '"';
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			*o++ = '\\';
		*o++ = c < ' ' || c == 0x7f ? '?' : (char)c;
	}
	*o++ = '"';
	*o = '\0';
	return q;
}

/* A comment: parentheses and backslashes escaped (RFC 5322 §3.2.2). */
static char *
comment_quote(const char *v)
{
	size_t n = strlen(v);
	char *q = xmalloc(2 * n + 1), *o = q;

	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '(' || c == ')' || c == '\\')
			*o++ = '\\';
		*o++ = c < ' ' || c == 0x7f ? '?' : (char)c;
	}
	*o = '\0';
	return q;
}

void
authn_ar_add(struct authn_ar *ar, const char *method, const char *result,
    const char *comment, const char *property, const char *value)
{
	char *c = comment ? comment_quote(comment) : NULL;
	char *v = value ? value_quote(value) : NULL;

	if (ar->n == AR_RESULTS_MAX)
		panic("authn_ar_add: more than %d results", AR_RESULTS_MAX);
	ar->results[ar->n++] = xasprintf("%s=%s%s%s%s%s%s%s", method, result,
	    c ? " (" : "", c ? c : "", c ? ")" : "",
	    property && v ? " " : "", property && v ? property : "",
	    property && v ? "=" : "");
	if (property && v) {
		char *full = xasprintf("%s%s", ar->results[ar->n - 1], v);

		free(ar->results[ar->n - 1]);
		ar->results[ar->n - 1] = full;
	}
	free(c);
	free(v);
}

void
authn_ar_add_props(struct authn_ar *ar, const char *method,
    const char *result, const char *comment, const char *const *props,
    const char *const *values, size_t n)
{
	char *c = comment ? comment_quote(comment) : NULL;
	char *out;

	if (ar->n == AR_RESULTS_MAX)
		panic("authn_ar_add: more than %d results", AR_RESULTS_MAX);
	out = xasprintf("%s=%s%s%s%s", method, result, c ? " (" : "",
	    c ? c : "", c ? ")" : "");
	for (size_t i = 0; i < n; i++) {
		char *v = value_quote(values[i]);
		char *next = xasprintf("%s %s=%s", out, props[i], v);

		free(v);
		free(out);
		out = next;
	}
	ar->results[ar->n++] = out;
	free(c);
}

char *
authn_ar_field(const struct authn_ar *ar)
{
	size_t len = strlen("Authentication-Results: ") +
	    strlen(ar->authserv_id) + strlen("; none\r\n") + 1;
	char *out, *o;

	for (size_t i = 0; i < ar->n; i++)
		len += strlen(ar->results[i]) + 4;
	out = o = xmalloc(len);
	o += sprintf(o, "Authentication-Results: %s", ar->authserv_id);
	if (ar->n == 0)
		o += sprintf(o, "; none");
	for (size_t i = 0; i < ar->n; i++)
		o += sprintf(o, ";\r\n\t%s", ar->results[i]);
	sprintf(o, "\r\n");
	return out;
}

/* Skips CFWS (RFC 5322 §3.2.2: white space, folding, nested comments). */
static size_t
cfws_skip(const char *s, size_t i, size_t n)
{
	while (i < n) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			unsigned depth = 0;

			for (; i < n; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			if (i < n)
				i++;
		} else {
			break;
		}
	}
	return i;
}

/* Is the field (f, n bytes, name included) an Authentication-Results
 * one? Returns the index after its colon, or 0. White space may come
 * between the name and the colon (obs-optional, RFC 5322 §4.5.8), which
 * parsers must accept (§4): "Authentication-Results :" is the same
 * field to a filter that trusts our results, so it is stripped too. */
static size_t
ar_name_end(const char *f, size_t n)
{
	static const char name[] = "Authentication-Results";
	size_t i = sizeof(name) - 1;

	if (n < i || strncasecmp(f, name, i) != 0)
		return 0;
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	return i < n && f[i] == ':' ? i + 1 : 0;
}

/* Does the field (name included, up to its end) name authserv_id? The
 * authserv-id is a value: a token or a quoted-string (§2.2). start:
 * the index after the colon. */
static bool
is_ours(const char *f, size_t n, size_t start, const char *id)
{
	size_t i = start, idn = strlen(id);
	char v[256];
	size_t vn = 0;

	i = cfws_skip(f, i, n);
	if (i < n && f[i] == '"') {
		for (i++; i < n && f[i] != '"'; i++) {
			if (f[i] == '\\' && i + 1 < n)
				i++;
			if (f[i] == '\r' || f[i] == '\n')
				continue;
			if (vn + 1 < sizeof(v))
				v[vn++] = f[i];
		}
	} else {
		while (i < n && !strchr(" \t\r\n;()", f[i])) {
			if (vn + 1 < sizeof(v))
				v[vn++] = f[i];
			i++;
		}
	}
	/* A trailing dot names the same host. */
	if (vn > 0 && v[vn - 1] == '.')
		vn--;
	return vn == idn && strncasecmp(v, id, idn) == 0;
}

size_t
authn_ar_strip(char *h, size_t len, const char *authserv_id,
    size_t *removed_out)
{
	size_t i = 0, o = 0, removed = 0;

	while (i < len) {
		size_t end = i;

		/* A field: its first line and every continuation line
		 * (starting with white space). */
		for (;;) {
			const char *nl = memchr(h + end, '\n', len - end);

			end = nl ? (size_t)(nl - h) + 1 : len;
			if (end >= len || (h[end] != ' ' && h[end] != '\t'))
				break;
		}
		size_t start = ar_name_end(h + i, end - i);

		if (start > 0 && is_ours(h + i, end - i, start,
		    authserv_id)) {
			removed++;
		} else {
			memmove(h + o, h + i, end - i);
			o += end - i;
		}
		i = end;
	}
	if (removed_out != NULL)
		*removed_out = removed;
	return o;
}
