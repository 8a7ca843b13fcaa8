/*
 * libFuzzer harness for the mbox reader and writer of src/archive. Byte 0
 * chooses mboxrd or mboxo and the piece size (1 to 64); the rest is an
 * mbox file.
 *
 * Checked: the file read whole and read in pieces gives the same calls
 * (begins with their line, offset and date; message bytes; ends with
 * flags and keywords), or the same error at the same line; a begin's line
 * and offset lie in the file; keywords are at most ARCHIVE_KEYWORDS_MAX
 * bytes. And the rest of the input as one message: written by the mbox
 * writer and read back, it comes back byte for byte (LF line ends) with
 * its flags and keywords, when it is a message the writer can carry
 * exactly (no CR, a header ended by a blank line and free of the fields
 * the reader hides, lines shorter than the reader holds, a final LF).
 *
 * fuzz-sources: src/archive/archive_mbox.c src/archive/archive_eol.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive/archive.h"
#include "lib/util.h"

struct rec {
	char *out;
	size_t len, cap;
	size_t input_len;
};

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mbox: invariant broken: %s\n", what);
		abort();
	}
}

static void
put(struct rec *r, const void *p, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->out = xrealloc(r->out, r->cap);
	}
	memcpy(r->out + r->len, p, n);
	r->len += n;
}

static int
on_begin(void *arg, const struct archive_mbox_from *f)
{
	struct rec *r = arg;

	check(f->line >= 1 && f->offset < r->input_len, "begin outside");
	put(r, "\0B", 2);
	put(r, f, sizeof(*f));
	return 0;
}

static int
on_data(void *arg, const char *p, size_t n)
{
	check(n > 0, "empty data call");
	put(arg, p, n);
	return 0;
}

static int
on_end(void *arg, const struct archive_mbox_msg *m)
{
	put(arg, "\0E", 2);
	put(arg, &m->flags, sizeof(m->flags));
	put(arg, &m->is_pseudo, sizeof(m->is_pseudo));
	if (m->keywords != NULL) {
		check(strlen(m->keywords) <= ARCHIVE_KEYWORDS_MAX,
		    "keywords too long");
		put(arg, m->keywords, strlen(m->keywords));
	}
	return 0;
}

static const struct archive_mbox_cb cb = { on_begin, on_data, on_end };

static char *
read_mbox(enum archive_mbox_kind kind, const uint8_t *in, size_t n,
    size_t step, size_t *len_out, uint64_t *err_line)
{
	struct rec r = { .input_len = n };
	struct archive_mbox *m = archive_mbox_new(kind, &cb, &r);
	enum parse_rc rc = PARSE_MORE;
	uint64_t off;

	put(&r, "", 0);
	for (size_t i = 0; i < n && rc == PARSE_MORE; i += step)
		rc = archive_mbox_feed(m, (const char *)in + i,
		    n - i < step ? n - i : step);
	if (rc == PARSE_MORE)
		rc = archive_mbox_finish(m);
	*err_line = 0;
	if (rc == PARSE_ERROR) {
		archive_mbox_error(m, err_line, &off);
		check(*err_line >= 1, "error without a line");
		put(&r, "\0X", 2);
	}
	archive_mbox_free(&m);
	*len_out = r.len;
	return r.out;
}

static bool
is_hidden(const char *line, size_t n)
{
	static const char *const names[] = {
		"Status:", "X-Status:", "X-Keywords:", "X-UID:", "X-IMAP:",
		"X-IMAPbase:", "Content-Length:",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t k = strlen(names[i]);

		if (n >= k - 1 && strncasecmp(line, names[i], k - 1) == 0 &&
		    (n == k - 1 || line[k - 1] == ':'))
			return true;
	}
	return false;
}

/* Whether the writer and reader carry msg exactly. */
static bool
is_carried(const char *msg, size_t n)
{
	const char *end = NULL;
	size_t start = 0;

	if (n == 0 || msg[n - 1] != '\n' || memchr(msg, '\r', n) != NULL ||
	    memchr(msg, '\0', n) != NULL)
		return false;
	for (size_t i = 0; i + 1 < n; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n') {
			end = msg + i + 1;
			break;
		}
	}
	if (msg[0] == '\n')
		end = msg;
	if (end == NULL)
		return false;
	while (start < n) {
		const char *lf = memchr(msg + start, '\n', n - start);
		size_t len = (size_t)(lf - msg) - start;

		if (len + 1 >= ARCHIVE_MBOX_LINE_MAX / 2)
			return false;
		if (msg + start < end && (is_hidden(msg + start, len) ||
		    ((msg[start] == ' ' || msg[start] == '\t') &&
		    start == 0)))
			return false;
		start += len + 1;
	}
	return true;
}

static int
out_write(void *arg, const char *p, size_t n)
{
	put(arg, p, n);
	return 0;
}

static void
round_trip(const uint8_t *data, size_t n)
{
	const char *msg = (const char *)data;
	struct rec w = { 0 };
	struct archive_mbox_out *o;
	char from[ARCHIVE_MBOX_FROM_MAX], *got, *want;
	size_t len, wlen, glen;
	uint64_t line;
	uint32_t flags = n > 0 ? data[0] & 31 : 0;

	if (!is_carried(msg, n))
		return;
	put(&w, from, archive_mbox_from_format(from, sizeof(from), NULL,
	    1796608638));
	o = archive_mbox_out_new(flags, "$Label1 k", out_write, &w);
	check(archive_mbox_out_feed(o, msg, n) == 0, "writer failed");
	check(archive_mbox_out_finish(o) == 0, "writer failed");
	archive_mbox_out_free(&o);
	got = read_mbox(ARCHIVE_MBOXRD, (const uint8_t *)w.out, w.len, w.len,
	    &glen, &line);
	/* What the reader should say. */
	struct archive_mbox_from f = { 1, 0, 1796608638 };
	struct rec r = { 0 };
	bool is_pseudo = false;

	put(&r, "\0B", 2);
	put(&r, &f, sizeof(f));
	put(&r, msg, n);
	put(&r, "\0E", 2);
	put(&r, &flags, sizeof(flags));
	put(&r, &is_pseudo, sizeof(is_pseudo));
	put(&r, "$Label1 k", 9);
	want = r.out;
	wlen = r.len;
	len = glen;
	check(len == wlen && memcmp(got, want, len) == 0,
	    "written and read back, the message changed");
	free(got);
	free(want);
	free(w.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum archive_mbox_kind kind;
	size_t step, alen, blen;
	uint64_t aline, bline;
	char *a, *b;

	if (size < 1)
		return 0;
	kind = data[0] & 1 ? ARCHIVE_MBOXO : ARCHIVE_MBOXRD;
	step = 1 + (data[0] >> 2) % 64;
	data++;
	size--;
	a = read_mbox(kind, data, size, size ? size : 1, &alen, &aline);
	b = read_mbox(kind, data, size, step, &blen, &bline);
	check(alen == blen && memcmp(a, b, alen) == 0 && aline == bline,
	    "whole and in pieces differ");
	free(a);
	free(b);
	round_trip(data, size);
	return 0;
}
