/*
 * fuzz_queue_out: what the queue sends to the next hop and signs
 * (src/queue/queue_text.c, src/queue/queue_dkim.c): the body with line
 * ends made CRLF and dots stuffed (RFC 5321 §2.3.8, §4.5.2), the DKIM
 * relaxed body hash and header fields (RFC 6376 §3.4.2, §3.4.4).
 *
 * Input: byte 0 seeds the piece sizes; the rest is a message body (and,
 * split at line ends, header fields).
 *
 * Checked:
 * - queue_stuff_feed() writes at most 2 * n + 2 bytes per call, into a
 *   buffer of exactly that size (ASan sees one more), and gives the same
 *   bytes however the body is split: the body with every CRLF, bare CR and
 *   bare LF as CRLF and a dot doubled at each line start, then ".\r\n"
 *   after a last line end; the only "\r\n.\r\n" is the final one (no
 *   message ends early at the next hop: SMTP smuggling);
 * - the DKIM body hash is the same however the body is split, and equals
 *   the SHA-256 of a reference relaxed canonicalisation of the body as
 *   sent (line ends as above);
 * - a relaxed header field has a lowercase name without white space, and
 *   a value without CR, LF, tab, double, leading or trailing space.
 *
 * fuzz-sources: src/queue/queue_text.c src/queue/queue_dkim.c
 * fuzz-sources: src/auth/auth_crypto.c src/authn/authn_dkim_canon.c
 * fuzz-packages: libcrypto jansson
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "net/net.h"
#include "queue/queue_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Signing is not reached from what this harness calls. */
enum net_key_type
net_key_type_of(const struct net_key *k)
{
	abort();
}

int
net_key_sign(const struct net_key *k, const void *data, size_t len,
    unsigned char **sig_out, size_t *siglen_out)
{
	abort();
}

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_queue_out: invariant broken: %s\n", what);
		abort();
	}
}

static uint32_t
next_step(uint32_t *seed, size_t left)
{
	size_t step;

	*seed = *seed * 1103515245u + 12345u;
	step = (*seed >> 16) % 33;
	return (uint32_t)(step > left ? left : step);
}

/* The body as lines: every CRLF, bare CR and bare LF is one line end.
 * Calls line(text, n, has_end) for each line. */
static void
lines_each(const char *in, size_t len,
    void (*line)(void *, const char *, size_t, bool), void *arg)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] != '\r' && in[i] != '\n')
			continue;
		line(arg, in + start, i - start, true);
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	if (start < len)
		line(arg, in + start, len - start, false);
}

struct out {
	char *p;
	size_t len;
	size_t empty;	/* DKIM: empty lines held back */
};

static void
stuffed_line(void *arg, const char *s, size_t n, bool has_end)
{
	struct out *o = arg;

	if (n > 0 && s[0] == '.')
		o->p[o->len++] = '.';
	memcpy(o->p + o->len, s, n);
	o->len += n;
	(void)has_end;
	memcpy(o->p + o->len, "\r\n", 2);
	o->len += 2;
}

static void
relaxed_line(void *arg, const char *s, size_t n, bool has_end)
{
	struct out *o = arg;
	char *line = malloc(n + 1);
	size_t k = 0;
	bool wsp = false;

	(void)has_end;
	/* RFC 6376 §3.4.4: white space runs as one space, none at the end
	 * of a line; empty lines at the end of the body go. */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t') {
			wsp = true;
			continue;
		}
		if (wsp)
			line[k++] = ' ';
		wsp = false;
		line[k++] = s[i];
	}
	if (k == 0) {
		o->empty++;
		free(line);
		return;
	}
	for (; o->empty > 0; o->empty--) {
		memcpy(o->p + o->len, "\r\n", 2);
		o->len += 2;
	}
	memcpy(o->p + o->len, line, k);
	o->len += k;
	memcpy(o->p + o->len, "\r\n", 2);
	o->len += 2;
	free(line);
}

static void
stuff_check(const char *in, size_t len, uint32_t seed)
{
	struct queue_stuff st;
	char *got = malloc(2 * len + 2 + QUEUE_STUFF_END_MAX);
	struct out want = { malloc(2 * len + 8), 0, 0 };
	size_t g = 0, e;
	char end[QUEUE_STUFF_END_MAX];

	queue_stuff_init(&st);
	for (size_t off = 0; off < len;) {
		size_t n = next_step(&seed, len - off);
		char *out = malloc(2 * n + 2);
		size_t o = queue_stuff_feed(&st, in + off, n, out);

		check(o <= 2 * n + 2, "stuffing within 2 * n + 2");
		memcpy(got + g, out, o);
		g += o;
		free(out);
		off += n;
	}
	e = queue_stuff_end(&st, end);
	check(e <= QUEUE_STUFF_END_MAX, "end within its maximum");
	memcpy(got + g, end, e);
	g += e;
	lines_each(in, len, stuffed_line, &want);
	memcpy(want.p + want.len, ".\r\n", 3);
	want.len += 3;
	check(g == want.len && memcmp(got, want.p, g) == 0,
	    "stuffed body equals the reference however split");
	for (size_t i = 0; i + 5 <= g; i++) {
		if (memcmp(got + i, "\r\n.\r\n", 5) == 0)
			check(i + 5 == g, "the only end of data is the last");
	}
	check(g == 3 || memcmp(got, ".\r\n", 3) != 0,
	    "no end of data at the start");
	free(got);
	free(want.p);
}

static void
dkim_check(const char *in, size_t len, uint32_t seed)
{
	struct queue_dkim_body whole, pieces;
	unsigned char h1[32], h2[32], h3[32];
	struct out want = { malloc(2 * len + 8), 0, 0 };

	queue_dkim_body_init(&whole);
	queue_dkim_body_update(&whole, in, len);
	queue_dkim_body_final(&whole, h1);
	queue_dkim_body_init(&pieces);
	for (size_t off = 0; off < len;) {
		size_t n = next_step(&seed, len - off);

		queue_dkim_body_update(&pieces, in + off, n);
		off += n;
	}
	queue_dkim_body_final(&pieces, h2);
	check(memcmp(h1, h2, 32) == 0, "body hash the same however split");
	lines_each(in, len, relaxed_line, &want);
	auth_sha256(want.p, want.len, h3);
	check(memcmp(h1, h3, 32) == 0,
	    "body hash is that of the relaxed body (RFC 6376 §3.4.4)");
	free(want.p);
}

static void
header_check(const char *in, size_t len)
{
	size_t start = 0;

	/* Fields: lines, a line that starts with white space continuing the
	 * one before. */
	for (size_t i = 0; i <= len; i++) {
		char *r, *colon;

		if (i < len && !(in[i] == '\n' && (i + 1 >= len ||
		    (in[i + 1] != ' ' && in[i + 1] != '\t'))))
			continue;
		r = authn_dkim_header_relaxed(in + start, i - start);
		colon = strchr(r, ':');
		check(colon != NULL, "a colon");
		for (char *p = r; p < colon; p++)
			check(*p != ' ' && *p != '\t' &&
			    (*p < 'A' || *p > 'Z'), "name lowercase, no space");
		for (char *p = colon + 1; *p; p++)
			check(*p != '\r' && *p != '\n' && *p != '\t' &&
			    !(p[0] == ' ' && (p[1] == ' ' || p[1] == '\0' ||
			    p == colon + 1)), "value unfolded, single spaces");
		free(r);
		start = i + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;
	uint32_t seed;

	if (size < 1)
		return 0;
	seed = (uint32_t)data[0] * 2654435761u | 1;
	stuff_check(in, size - 1, seed);
	dkim_check(in, size - 1, seed);
	header_check(in, memchr(in, '\0', size - 1) ?
	    (size_t)((const char *)memchr(in, '\0', size - 1) - in) : size - 1);
	return 0;
}
