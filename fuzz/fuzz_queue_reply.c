/*
 * fuzz_queue_reply: the reader of remote SMTP replies of the queue's
 * client (src/queue/queue_reply.c, RFC 5321 §4.2), and what the queue
 * takes out of a reply: EHLO keywords, the one-line form for logs and
 * bounces, the RFC 3463 enhanced status code.
 *
 * Input: byte 0 seeds the sizes of the reads; the rest is what a remote
 * server sends, read once whole and once in pieces of 0-63 bytes.
 *
 * Checked: both readings give the same replies and stop the same way; a
 * reply has a code 200-599, at most QUEUE_REPLY_LINES_MAX lines and a
 * NUL-terminated text within its buffer; PARSE_MORE consumes nothing;
 * the one-line form holds no control character; the status is
 * "class.subject.detail" with the class of the reply code.
 *
 * fuzz-sources: src/queue/queue_reply.c
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "queue/queue_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_queue_reply: invariant broken: %s\n",
		    what);
		abort();
	}
}

/* What one reading saw, to compare the two. */
struct seen {
	char log[8192];
	size_t len;
};

static void
seen_add(struct seen *s, const char *fmt, int code, size_t nlines,
    uint64_t hash)
{
	int n = snprintf(s->log + s->len, sizeof(s->log) - s->len, fmt, code,
	    nlines, (unsigned long long)hash);

	if (n > 0 && (size_t)n < sizeof(s->log) - s->len)
		s->len += (size_t)n;
}

static void
reply_check(const struct queue_reply *r)
{
	char line[600], status[16];
	size_t n;

	check(r->code >= 200 && r->code <= 599, "code in 200-599");
	check(r->nlines >= 1 && r->nlines <= QUEUE_REPLY_LINES_MAX,
	    "lines within the limit");
	check(r->len < sizeof(r->text) && r->text[r->len] == '\0' &&
	    strlen(r->text) <= r->len, "text terminated within its buffer");
	queue_reply_line(r, line, sizeof(line));
	check(strlen(line) < sizeof(line), "one line within its buffer");
	for (const char *p = line; *p; p++)
		check((unsigned char)*p >= 0x20, "one line without controls");
	queue_reply_status(r, status, sizeof(status));
	n = strlen(status);
	check(n >= 5 && n < sizeof(status), "status length");
	check(status[0] - '0' == r->code / 100 && status[1] == '.',
	    "status class is the reply's");
	for (const char *p = status; *p; p++)
		check(isdigit((unsigned char)*p) || *p == '.',
		    "status digits and dots");
	/* A small buffer truncates and terminates. */
	queue_reply_line(r, line, 1);
	check(line[0] == '\0', "one-byte buffer");
}

static void
reading(const uint8_t *data, size_t size, uint32_t seed, struct seen *s)
{
	struct evbuffer *in = evbuffer_new();
	size_t off = 0;
	bool is_done = false;

	s->len = 0;
	while (!is_done) {
		size_t step = size - off;
		enum parse_rc rc;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			step = (seed >> 16) % 64;
			if (step > size - off)
				step = size - off;
		}
		evbuffer_add(in, data + off, step);
		off += step;
		for (;;) {
			struct queue_reply r;
			size_t before = evbuffer_get_length(in);
			uint64_t h = 1469598103934665603u;

			rc = queue_reply_read(in, &r);
			if (rc == PARSE_MORE) {
				check(evbuffer_get_length(in) == before,
				    "MORE consumes nothing");
				break;
			}
			if (rc == PARSE_ERROR) {
				/* The client hangs up. */
				seen_add(s, "error %d %zu %llu\n", 0, 0, 0);
				is_done = true;
				break;
			}
			check(evbuffer_get_length(in) < before,
			    "DONE consumes the reply");
			reply_check(&r);
			queue_reply_ehlo(&r);
			for (size_t i = 0; i < r.len; i++)
				h = (h ^ (unsigned char)r.text[i]) *
				    1099511628211u;
			h ^= (uint64_t)r.has_starttls | r.has_pipelining << 1 |
			    r.has_size << 2 | r.has_8bitmime << 3 |
			    r.has_smtputf8 << 4 | r.has_dsn << 5;
			h ^= r.size_max * 31;
			seen_add(s, "reply %d %zu %llu\n", r.code, r.nlines,
			    h);
		}
		if (off == size)
			break;
	}
	evbuffer_free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen whole, pieces;

	if (size < 1)
		return 0;
	reading(data + 1, size - 1, 0, &whole);
	reading(data + 1, size - 1, (uint32_t)data[0] * 2654435761u | 1,
	    &pieces);
	check(whole.len == pieces.len &&
	    memcmp(whole.log, pieces.log, whole.len) == 0,
	    "same replies however the input is split");
	return 0;
}
