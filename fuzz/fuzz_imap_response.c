/*
 * fuzz_imap_response: IMAP responses of a source server as postern migrate
 * reads them (migrate_parser_feed() in src/migrate/migrate_parser.c and the
 * readers of migrate_values.c: FETCH, LIST, VANISHED sets, modified UTF-7
 * names).
 *
 * Input: the first byte chooses how many bytes each read delivers (1 to
 * 256); the rest is the server's byte stream. Responses are parsed as they
 * complete, each handed to every reader.
 *
 * Checked: a response never takes more bytes than the buffer holds; every
 * string value lies inside the buffer; a FETCH body too; the buffer never
 * holds more than the line and literal limits allow; keywords stay within
 * their bound and NUL-terminated.
 *
 * fuzz-sources: src/migrate/migrate_parser.c src/migrate/migrate_values.c
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mutf7.h"
#include "migrate/migrate_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_ 512
#define LITERAL_MAX 2048

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_imap_response: invariant broken: %s\n",
		    what);
		abort();
	}
}

static const struct buf *cur;

static void
check_inside(const char *s, size_t len)
{
	check(s >= cur->data && s + len <= cur->data + cur->len,
	    "a value outside the buffer");
}

static void
walk(const struct migrate_val *v, int depth)
{
	check(depth <= MIGRATE_DEPTH_MAX + 1, "nesting over the limit");
	for (; v != NULL; v = v->next) {
		if (v->kind == MIGRATE_VAL_LIST)
			walk(v->kid, depth + 1);
		else
			check_inside(v->s, v->len);
	}
}

static void
range_cb(void *arg, uint32_t lo, uint32_t hi)
{
	(void)arg;
	check(lo >= 1 && lo <= hi, "a range out of order");
}

static void
readers(const struct migrate_resp *r)
{
	struct migrate_fetch f;
	struct migrate_list l;
	const struct migrate_val *set;
	bool is_truncated;
	uint64_t n;

	walk(r->items, 1);
	check(r->tag != NULL && r->code != NULL && r->text != NULL,
	    "a status string missing");
	(void)migrate_text_u64(r->code_args, strlen(r->code_args), &n);
	if (migrate_fetch_read(r, &f, &is_truncated) == 0) {
		if (f.body != NULL && f.body_len > 0)
			check_inside(f.body, f.body_len);
		check(memchr(f.keywords, '\0', sizeof(f.keywords)) != NULL,
		    "keywords not NUL-terminated");
	}
	if (migrate_list_read(r, &l) == 0) {
		char *name;

		check_inside(l.name, l.name_len);
		char *raw = strndup(l.name, l.name_len);

		name = raw != NULL && strlen(raw) == l.name_len ?
		    mutf7_decode(raw) : NULL;
		free(name);
		free(raw);
	}
	if ((set = migrate_vanished_set(r)) != NULL)
		(void)migrate_uidset_read(set->s, set->len, range_cb, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct migrate_parser p;
	struct migrate_resp r;
	struct buf in;
	size_t chunk, off = 1;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	migrate_parser_init(&p, LINE_MAX_, LITERAL_MAX);
	buf_init(&in, LINE_MAX_ * 4 + LITERAL_MAX * 4);
	cur = &in;
	while (off < size) {
		size_t take = size - off < chunk ? size - off : chunk;
		enum parse_rc rc;

		if (buf_append(&in, data + off, take) < 0)
			break;	/* the client refuses this too */
		off += take;
		while ((rc = migrate_parser_feed(&p, &in, &r)) == PARSE_DONE) {
			check(p.end <= in.len, "a response past the buffer");
			readers(&r);
			migrate_parser_consume(&p, &in);
		}
		if (rc == PARSE_ERROR)
			break;
	}
	migrate_parser_deinit(&p);
	buf_deinit(&in);
	return 0;
}
