/*
 * mutf7: modified UTF-7 (RFC 3501 §5.1.3), the mailbox name encoding of
 * IMAP4rev1 clients (IMAP4rev2 and UTF8=ACCEPT sessions use UTF-8
 * directly) and of Dovecot's Maildir++ folders (src/archive).
 */
#include "lib/mutf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Decodes one UTF-8 sequence at *p; returns the code point or -1. */
static long
utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	long cp;
	int n;

	if (s[0] < 0x80) {
		*p += 1;
		return s[0];
	}
	if ((s[0] & 0xe0) == 0xc0) {
		cp = s[0] & 0x1f;
		n = 1;
	} else if ((s[0] & 0xf0) == 0xe0) {
		cp = s[0] & 0x0f;
		n = 2;
	} else if ((s[0] & 0xf8) == 0xf0) {
		cp = s[0] & 0x07;
		n = 3;
	} else {
		return -1;
	}
	for (int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past Unicode are not
	 * UTF-8. */
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
	    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p += (size_t)n + 1;
	return cp;
}

char *
mutf7_encode(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t cap = strlen(utf8) * 4 + 8, o = 0;
	char *out = xmalloc(cap);

	while (*p) {
		if (*p >= 0x20 && *p < 0x7f) {
			out[o++] = (char)*p;
			if (*p == '&')
				out[o++] = '-';
			p++;
			continue;
		}
		/* A run of other characters as base64 of UTF-16BE. */
		uint32_t bits = 0;
		int nbits = 0;

		out[o++] = '&';
		while (*p && (*p < 0x20 || *p >= 0x7f)) {
			long cp = utf8_next(&p);
			uint16_t units[2];
			int nunits = 1;

			if (cp < 0) {
				free(out);
				return NULL;
			}
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 + (cp >> 10));
				units[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
				nunits = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < nunits; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					out[o++] = b64[(bits >> nbits) & 0x3f];
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0)
			out[o++] = b64[(bits << (6 - nbits)) & 0x3f];
		out[o++] = '-';
	}
	out[o] = '\0';
	return out;
}

static int
b64_value(char c)
{
	const char *at = c ? strchr(b64, c) : NULL;

	return at ? (int)(at - b64) : -1;
}

static size_t
utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

char *
mutf7_decode(const char *in)
{
	size_t o = 0;
	char *out = xmalloc(strlen(in) * 2 + 1);
	const char *p = in;

	while (*p) {
		if ((unsigned char)*p >= 0x7f || (unsigned char)*p < 0x20)
			goto bad;
		if (*p != '&') {
			out[o++] = *p++;
			continue;
		}
		p++;
		if (*p == '-') {
			out[o++] = '&';
			p++;
			continue;
		}
		uint32_t bits = 0, high = 0;
		int nbits = 0, nchars = 0;

		for (; *p != '-'; p++) {
			int v = b64_value(*p);

			if (v < 0)
				goto bad;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			nchars++;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t unit = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			if (unit >= 0xd800 && unit <= 0xdbff) {
				if (high != 0)
					goto bad;
				high = unit;
				continue;
			}
			if (unit >= 0xdc00 && unit <= 0xdfff) {
				if (high == 0)
					goto bad;
				unit = 0x10000 + ((high - 0xd800) << 10) +
				    (unit - 0xdc00);
				high = 0;
			} else if (high != 0) {
				goto bad;
			}
			/* RFC 3501 §5.1.3: printable ASCII must not be
			 * encoded; and U+0000 would cut the name short
			 * ("x&AAA-y" would become "x"). */
			if (unit == 0 || (unit >= 0x20 && unit < 0x7f))
				goto bad;
			o += utf8_put(out + o, unit);
		}
		/* Leftover bits must be zero padding; "&-" with nothing in
		 * between was handled above. */
		if (nchars == 0 || high != 0 || nbits >= 6 || bits != 0)
			goto bad;
		p++;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}
