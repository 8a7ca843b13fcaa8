#include "lib/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
base64_encode(const void *data, size_t n, bool is_url)
{
	const unsigned char *p = data;
	const char *abc = is_url ? url_alphabet : std_alphabet;
	char *out = xmalloc(BASE64_ENCODED_SIZE(n));
	size_t o = 0, i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		    p[i + 2];

		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		if (!is_url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		if (!is_url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int
sextet(char c, bool is_url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (is_url ? '-' : '+'))
		return 62;
	if (c == (is_url ? '_' : '/'))
		return 63;
	return -1;
}

unsigned char *
base64_decode(const char *text, size_t len, bool is_url, size_t *n_out)
{
	size_t pad = 0, full, o = 0;
	unsigned char *out;
	uint32_t v = 0;
	int bits = 0;

	if (!is_url) {
		if (len % 4 != 0)
			return NULL;
		while (pad < 2 && len > pad && text[len - 1 - pad] == '=')
			pad++;
	} else if (len % 4 == 1) {
		return NULL;
	}
	full = len - pad;
	out = xmalloc(full / 4 * 3 + 3 + 1);
	for (size_t i = 0; i < full; i++) {
		int s = sextet(text[i], is_url);

		if (s < 0) {
			free(out);
			return NULL;
		}
		v = v << 6 | (uint32_t)s;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	/* RFC 4648 §3.5: the bits left over must be zero. */
	if (v != 0) {
		free(out);
		return NULL;
	}
	out[o] = '\0';
	*n_out = o;
	return out;
}
