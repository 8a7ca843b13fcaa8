/*
 * store_text: the text helpers of search, shared by both backends: UTF-8
 * checks, the case-insensitive substring test of RFC 9051 §6.4.4 and the
 * HEADER field test. Pure functions; any thread.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF (RFC 3629 §3). */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

bool
is_store_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

char *
store_utf8_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = xmalloc(len + 1);
	size_t i = 0;

	/* Mail is mostly ASCII: copy runs of it whole. */
	while (i < len && p[i] != '\0' && p[i] < 0x80)
		i++;
	memcpy(out, s, i);
	while (i < len) {
		size_t n;

		if (p[i] != '\0' && p[i] < 0x80) {
			out[i] = (char)p[i];
			i++;
			continue;
		}
		n = p[i] == '\0' ? 0 : utf8_seq(p + i, len - i);

		if (n == 0) {
			out[i++] = '?';
			continue;
		}
		memcpy(out + i, p + i, n);
		i += n;
	}
	out[len] = '\0';
	return out;
}

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool
has_store_text(const char *hay, size_t hlen, const char *needle,
    size_t nlen)
{
	const unsigned char *h = (const unsigned char *)hay;
	const unsigned char *n = (const unsigned char *)needle;
	unsigned char first, other;

	if (nlen == 0)
		return true;
	if (nlen > hlen)
		return false;
	/* Two memchr()s find candidates for the first byte in either case;
	 * the rest is compared folded. */
	first = fold(n[0]);
	other = first >= 'a' && first <= 'z' ? (unsigned char)(first - 32) :
	    first;
	for (size_t i = 0; i + nlen <= hlen;) {
		size_t span = hlen - nlen + 1 - i;
		const unsigned char *a = memchr(h + i, first, span);
		const unsigned char *b = other == first ? NULL :
		    memchr(h + i, other, span);
		const unsigned char *c;
		size_t j;

		if (a == NULL && b == NULL)
			return false;
		c = a == NULL ? b : b == NULL ? a : a < b ? a : b;
		for (j = 1; j < nlen && fold(c[j]) == fold(n[j]); j++)
			;
		if (j == nlen)
			return true;
		i = (size_t)(c - h) + 1;
	}
	return false;
}

/* Length of the line at p (up to end), its line end included. */
static size_t
line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static bool
is_blank_line(const char *p, size_t n)
{
	return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' &&
	    p[1] == '\n') || n == 0;
}

bool
has_store_header_text(const char *headers, size_t len, const char *field,
    const char *needle, size_t nlen)
{
	const char *p = headers, *end = headers + len;
	size_t flen = strlen(field);
	char *value = NULL;
	size_t cap = 0;
	bool is_found = false;

	while (p < end && !is_found) {
		size_t n = line_len(p, end), vlen = 0;
		const char *colon;

		if (is_blank_line(p, n))
			break;
		colon = memchr(p, ':', n);
		if (colon == NULL || *p == ' ' || *p == '\t') {
			p += n;
			continue;
		}
		/* RFC 5322 §4.5.3 allows white space before the colon. */
		{
			size_t name = (size_t)(colon - p);

			while (name > 0 && (p[name - 1] == ' ' ||
			    p[name - 1] == '\t'))
				name--;
			if (name != flen || strncasecmp(p, field, flen) != 0) {
				p += n;
				continue;
			}
		}
		/* Unfold (RFC 5322 §2.2.3): the value runs on over every
		 * line that starts with white space; line ends go. */
		{
			const char *v = colon + 1;
			const char *vend = p + n;

			for (;;) {
				size_t chunk = (size_t)(vend - v);

				while (chunk > 0 && (v[chunk - 1] == '\n' ||
				    v[chunk - 1] == '\r'))
					chunk--;
				if (vlen + chunk + 1 > cap) {
					cap = (vlen + chunk + 1) * 2;
					value = xrealloc(value, cap);
				}
				memcpy(value + vlen, v, chunk);
				vlen += chunk;
				p = vend;
				if (p >= end || (*p != ' ' && *p != '\t'))
					break;
				v = p;
				vend = p + line_len(p, end);
			}
		}
		is_found = has_store_text(value != NULL ? value : "", vlen,
		    needle, nlen);
	}
	free(value);
	return is_found;
}
