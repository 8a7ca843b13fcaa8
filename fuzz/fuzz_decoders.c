/*
 * fuzz_decoders: the strict base64 of SASL and JWT (src/lib/base64.c) and
 * the streaming decoders behind IMAP BINARY (RFC 3516) and HEADER.FIELDS
 * (src/imap/imap_fetch_filter.c): base64, quoted-printable and the field
 * filter, plus the header scanners FETCH uses to find a part's
 * Content-Transfer-Encoding.
 *
 * Input: byte 0 picks the filter (bits 0-1) and seeds the chunk sizes;
 * the rest is the data.
 *
 * Checked:
 * - base64_decode() accepts only canonical text: what it decodes encodes
 *   back to the same text (both alphabets), and anything encoded decodes
 *   back to itself;
 * - a filter gives the same output however its input is split, and never
 *   writes more than len + IMAP_FILTER_SLACK bytes per call (its
 *   contract, which FETCH sizes its buffer by) or SLACK at the end;
 * - the BINARY base64 filter, given text that strict base64 accepts once
 *   line breaks are removed, yields exactly the same bytes;
 * - quoted-printable output is never longer than its input;
 * - the header-end scanner finds the same end however the input is
 *   split, and header values are lowercase and within their buffer.
 *
 * fuzz-sources: src/imap/imap_fetch_filter.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_decoders: invariant broken: %s\n", what);
		abort();
	}
}

static void
base64_check(const char *in, size_t len, bool is_url)
{
	size_t n, n2;
	unsigned char *raw = base64_decode(in, len, is_url, &n);
	char *text;

	if (raw != NULL) {
		text = base64_encode(raw, n, is_url);
		check(strlen(text) == len && memcmp(text, in, len) == 0,
		    "decoded base64 encodes back to the same text");
		free(text);
		free(raw);
	}
	text = base64_encode(in, len, is_url);
	raw = base64_decode(text, strlen(text), is_url, &n2);
	check(raw != NULL && n2 == len && memcmp(raw, in, len) == 0,
	    "encoded bytes decode back to themselves");
	free(raw);
	free(text);
}

/* Runs the filter over in, cut into pieces by the seed (0: whole).
 * Returns the output, malloc'ed, *n_out bytes. */
static char *
filter_all(enum imap_filter_kind kind, const char *in, size_t len,
    uint32_t seed, size_t *n_out)
{
	static char *const fields[] = { "From", "Content-Type", "X-A" };
	struct imap_filter f;
	char *out = malloc(len + 2 * IMAP_FILTER_SLACK + 1);
	char *tmp = malloc(len + IMAP_FILTER_SLACK + 1);
	size_t o = 0, i = 0, n;

	imap_fetch_filter_init(&f, kind, fields, 3);
	while (i < len) {
		size_t step = len - i;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			step = (seed >> 16) % 40;
			if (step > len - i)
				step = len - i;
		}
		n = imap_fetch_filter_run(&f, in + i, step, tmp);
		check(n <= step + IMAP_FILTER_SLACK, "run within its slack");
		memcpy(out + o, tmp, n);
		o += n;
		i += step;
	}
	n = imap_fetch_filter_end(&f, tmp);
	check(n <= IMAP_FILTER_SLACK, "end within its slack");
	check(o + n <= len + 2 * IMAP_FILTER_SLACK, "output bounded");
	memcpy(out + o, tmp, n);
	free(tmp);
	*n_out = o + n;
	return out;
}

static void
b64_filter_check(const char *in, size_t len, const char *out, size_t olen)
{
	char *clean = malloc(len + 1);
	size_t n = 0, rn;
	unsigned char *raw;

	for (size_t i = 0; i < len; i++)
		if (in[i] != '\r' && in[i] != '\n')
			clean[n++] = in[i];
	raw = base64_decode(clean, n, false, &rn);
	if (raw != NULL)
		check(rn == olen && memcmp(raw, out, olen) == 0,
		    "BINARY base64 equals strict base64 on clean text");
	free(raw);
	free(clean);
}

static void
header_check(const char *in, size_t len, uint32_t seed)
{
	static const char *const names[] = { "Content-Transfer-Encoding",
	    "content-type", "From" };
	size_t whole, end = SIZE_MAX, i = 0;
	int state = 0;
	char v[32];

	state = 0;
	whole = imap_fetch_header_end(in, len, &state);
	check(whole == SIZE_MAX || whole <= len, "header end inside");
	state = 0;
	while (i < len && end == SIZE_MAX) {
		size_t step, e;

		seed = seed * 1103515245u + 12345u;
		step = (seed >> 16) % 17 + 1;
		if (step > len - i)
			step = len - i;
		e = imap_fetch_header_end(in + i, step, &state);
		if (e != SIZE_MAX) {
			check(e <= step, "header end inside the chunk");
			end = i + e;
		}
		i += step;
	}
	check(end == whole, "header end the same however split");
	for (size_t k = 0; k < 3; k++) {
		if (!imap_fetch_header_value(in, len, names[k], v, sizeof(v)))
			continue;
		check(memchr(v, '\0', sizeof(v)) != NULL, "value terminated");
		for (const char *p = v; *p; p++)
			check(*p < 'A' || *p > 'Z', "value lowercase");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum imap_filter_kind kinds[] = { IMAP_FILTER_BASE64,
	    IMAP_FILTER_QP, IMAP_FILTER_FIELDS, IMAP_FILTER_FIELDS_NOT };
	enum imap_filter_kind kind;
	const char *in = (const char *)data + 1;
	size_t len, n1, n2;
	char *whole, *pieces;
	uint32_t seed;

	if (size < 1)
		return 0;
	kind = kinds[data[0] & 3];
	seed = (uint32_t)data[0] * 2654435761u | 1;
	len = size - 1;

	base64_check(in, len, false);
	base64_check(in, len, true);

	whole = filter_all(kind, in, len, 0, &n1);
	pieces = filter_all(kind, in, len, seed, &n2);
	check(n1 == n2 && memcmp(whole, pieces, n1) == 0,
	    "filter output the same however the input is split");
	if (kind == IMAP_FILTER_BASE64)
		b64_filter_check(in, len, whole, n1);
	if (kind == IMAP_FILTER_QP)
		check(n1 <= len, "quoted-printable never grows");
	free(whole);
	free(pieces);

	header_check(in, len, seed);
	return 0;
}
