/*
 * libFuzzer harness for the HTTP/1.1 request parser (src/http). The first
 * byte of an input chooses the sizes of the feeds (1 to 16 bytes); the
 * rest is the stream, which is fed in those chunks into a small buf, as a
 * connection's reads would, requests taken one after another until an
 * error or the end.
 *
 * Checked: a request returned has a path starting with '/', a body of
 * exactly its Content-Length within the limit, no more headers than the
 * limit; the parser never leaves bytes of a request unread when it asks
 * for more; and the requests and the error are exactly those of feeding
 * the whole stream at once.
 *
 * fuzz-sources: src/http/http_parser.c
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parser.h"
#include "lib/buf.h"

static const struct http_limits LIM = {
	.line_max = 256,
	.head_max = 1024,
	.headers_max = 16,
	.body_max = 512,
};

#define EVENTS_MAX 64

struct event {
	int status;		/* 0: a request */
	size_t body_len;
	size_t nheaders;
	int method;
	char path[64];
};

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http_request: invariant broken: %s\n",
		    what);
		abort();
	}
}

/* Reads the stream in chunks of step bytes (0: whole). */
static size_t
run(const uint8_t *data, size_t n, size_t step, struct event *ev)
{
	struct http_parser p;
	struct buf in;
	size_t off = 0, nev = 0;

	buf_init(&in, step ? 64 : n + 1);
	http_parser_init(&p, &LIM);
	while (nev < EVENTS_MAX) {
		enum parse_rc rc = http_parser_feed(&p, &in);

		if (rc == PARSE_MORE) {
			size_t k;

			check(in.len == 0, "bytes left unread on PARSE_MORE");
			if (off == n)
				break;
			k = step ? step : n - off;
			if (k > n - off)
				k = n - off;
			if (k > buf_room(&in))
				k = buf_room(&in);
			buf_append(&in, data + off, k);
			off += k;
			continue;
		}
		memset(&ev[nev], 0, sizeof(ev[nev]));
		if (rc == PARSE_ERROR) {
			check(p.status >= 400 && p.status < 600, "status");
			check(p.error != NULL, "error text");
			ev[nev++].status = p.status;
			break;
		}
		check(p.req.path != NULL && p.req.path[0] == '/', "path");
		check(p.req.body_len <= LIM.body_max, "body limit");
		check(p.req.nheaders <= LIM.headers_max, "header limit");
		check(p.req.body_len == 0 || p.req.body != NULL, "body");
		ev[nev].body_len = p.req.body_len;
		ev[nev].nheaders = p.req.nheaders;
		ev[nev].method = (int)p.req.method;
		snprintf(ev[nev].path, sizeof(ev[nev].path), "%s", p.req.path);
		nev++;
		http_parser_next(&p);
	}
	http_parser_deinit(&p);
	buf_deinit(&in);
	return nev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event a[EVENTS_MAX], b[EVENTS_MAX];
	size_t step, na, nb;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 16) + 1;
	data++;
	size--;
	na = run(data, size, 0, a);
	nb = run(data, size, step, b);
	check(na == nb, "chunked feeding changed the number of requests");
	for (size_t i = 0; i < na; i++) {
		check(a[i].status == b[i].status, "chunked feeding changed "
		    "an error");
		check(a[i].body_len == b[i].body_len, "body length");
		check(a[i].nheaders == b[i].nheaders, "header count");
		check(a[i].method == b[i].method, "method");
		check(strcmp(a[i].path, b[i].path) == 0, "path");
	}
	return 0;
}
