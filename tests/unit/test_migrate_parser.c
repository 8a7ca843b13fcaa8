/*
 * Unit tests for migrate_parser.c and migrate_values.c: IMAP responses of
 * an untrusted source server (RFC 9051 §7), fed whole and a byte at a
 * time, hostile literals and lines, FETCH, LIST, VANISHED, dates and
 * modified UTF-7 names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/mutf7.h"
#include "migrate/migrate_int.h"
#include "store/store.h"

struct fixture {
	struct migrate_parser p;
	struct buf in;
	struct migrate_resp r;
};

static void
fix_init(struct fixture *f, size_t line_max, size_t literal_max)
{
	migrate_parser_init(&f->p, line_max, literal_max);
	buf_init(&f->in, 1 << 20);
}

static void
fix_deinit(struct fixture *f)
{
	migrate_parser_deinit(&f->p);
	buf_deinit(&f->in);
}

/* Feeds the whole text at once; returns the feed's result. */
static enum parse_rc
feed_all(struct fixture *f, const char *text, size_t len)
{
	assert_int_equal(buf_append(&f->in, text, len), 0);
	return migrate_parser_feed(&f->p, &f->in, &f->r);
}

/* Feeds one byte at a time: PARSE_MORE until the last byte. */
static void
feed_bytes_done_at_last(struct fixture *f, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		enum parse_rc rc;

		assert_int_equal(buf_append(&f->in, text + i, 1), 0);
		rc = migrate_parser_feed(&f->p, &f->in, &f->r);
		if (i + 1 < len)
			assert_int_equal(rc, PARSE_MORE);
		else
			assert_int_equal(rc, PARSE_DONE);
	}
}

static const char fetch_text[] =
    "* 12 FETCH (UID 345 FLAGS (\\Seen \\Flagged $Label1 \\Recent Work) "
    "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 11 "
    "MODSEQ (98765) BODY[HEADER.FIELDS (DATE)] {4}\r\nab\r\n "
    "BODY[] {12}\r\nHi\r\n{3}\r\nX\r\n)\r\n";

static void
check_fetch(const struct migrate_resp *r)
{
	struct migrate_fetch f;
	bool is_truncated;

	assert_int_equal(r->kind, MIGRATE_RESP_UNTAGGED);
	assert_int_equal(migrate_fetch_read(r, &f, &is_truncated), 0);
	assert_false(is_truncated);
	assert_int_equal(f.seq, 12);
	assert_int_equal(f.uid, 345);
	assert_true(f.has_flags);
	assert_int_equal(f.flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(f.keywords, "$Label1 Work");
	assert_true(f.has_date);
	/* 1996-07-17 09:44:25 UTC */
	assert_int_equal(f.internal_date, 837596665);
	assert_int_equal(f.size, 11);
	assert_int_equal(f.modseq, 98765);
	/* The literal holds what looks like a literal announcement: it is
	 * body, not grammar. */
	assert_int_equal(f.body_len, 12);
	assert_memory_equal(f.body, "Hi\r\n{3}\r\nX\r\n", 12);
}

static void
test_migrate_parser_fetch_whole(void **state)
{
	struct fixture f;

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, fetch_text, strlen(fetch_text)),
	    PARSE_DONE);
	check_fetch(&f.r);
	migrate_parser_consume(&f.p, &f.in);
	assert_int_equal(f.in.len, 0);
	fix_deinit(&f);
}

static void
test_migrate_parser_fetch_byte_at_a_time(void **state)
{
	struct fixture f;

	(void)state;
	fix_init(&f, 4096, 1024);
	feed_bytes_done_at_last(&f, fetch_text, strlen(fetch_text));
	check_fetch(&f.r);
	fix_deinit(&f);
}

static void
test_migrate_parser_two_responses_in_one_read(void **state)
{
	struct fixture f;
	const char text[] = "* 3 EXISTS\r\nA1 OK [READ-WRITE] Select done\r\n";

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_DONE);
	assert_int_equal(f.r.n, 2);
	assert_true(is_migrate_val_atom(f.r.items->next, "EXISTS"));
	migrate_parser_consume(&f.p, &f.in);
	assert_int_equal(migrate_parser_feed(&f.p, &f.in, &f.r), PARSE_DONE);
	assert_int_equal(f.r.kind, MIGRATE_RESP_TAGGED);
	assert_string_equal(f.r.tag, "A1");
	assert_int_equal(f.r.status, MIGRATE_STATUS_OK);
	assert_string_equal(f.r.code, "READ-WRITE");
	assert_string_equal(f.r.text, "Select done");
	migrate_parser_consume(&f.p, &f.in);
	assert_int_equal(migrate_parser_feed(&f.p, &f.in, &f.r), PARSE_MORE);
	fix_deinit(&f);
}

static void
test_migrate_parser_status_codes(void **state)
{
	struct fixture f;
	const char text[] = "* ok [uidvalidity 3857529045] UIDs valid\r\n";
	uint64_t n;

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_DONE);
	assert_int_equal(f.r.status, MIGRATE_STATUS_OK);
	assert_string_equal(f.r.code, "UIDVALIDITY");
	assert_true(migrate_text_u64(f.r.code_args, strlen(f.r.code_args),
	    &n));
	assert_int_equal(n, 3857529045u);
	fix_deinit(&f);
}

static void
test_migrate_parser_literal_over_limit_refused_early(void **state)
{
	struct fixture f;
	const char text[] = "* 1 FETCH (BODY[] {1025}\r\n";

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_ERROR);
	assert_non_null(strstr(f.p.error, "literal"));
	fix_deinit(&f);
}

static void
test_migrate_parser_huge_literal_size_refused(void **state)
{
	struct fixture f;
	const char *texts[] = {
		"* 1 FETCH (BODY[] {18446744073709551616}\r\n",
		"* 1 FETCH (BODY[] {99999999999999999999999}\r\n",
		"* 1 FETCH (BODY[] {4294967296}\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		fix_init(&f, 4096, 1 << 20);
		assert_int_equal(feed_all(&f, texts[i], strlen(texts[i])),
		    PARSE_ERROR);
		fix_deinit(&f);
	}
}

static void
test_migrate_parser_long_line_refused(void **state)
{
	struct fixture f;
	char line[300];

	(void)state;
	fix_init(&f, 256, 1024);
	memset(line, 'a', sizeof(line));
	/* No line end at all: refused once the limit is passed, not held. */
	assert_int_equal(feed_all(&f, line, sizeof(line)), PARSE_ERROR);
	fix_deinit(&f);
}

static void
test_migrate_parser_literal_inside_quotes_is_text(void **state)
{
	struct fixture f;
	const char text[] =
	    "* LIST (\\HasNoChildren) \"/\" \"odd {5}\"\r\n";
	struct migrate_list l;

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_DONE);
	assert_int_equal(migrate_list_read(&f.r, &l), 0);
	assert_int_equal(l.delim, '/');
	assert_int_equal(l.name_len, 7);
	assert_memory_equal(l.name, "odd {5}", 7);
	fix_deinit(&f);
}

static void
test_migrate_parser_list_literal_name_and_special_use(void **state)
{
	struct fixture f;
	const char text[] =
	    "* LIST (\\HasNoChildren \\Sent) \".\" {12}\r\nSent \"Items\"\r\n";
	struct migrate_list l;

	(void)state;
	fix_init(&f, 4096, 1024);
	feed_bytes_done_at_last(&f, text, strlen(text));
	assert_int_equal(migrate_list_read(&f.r, &l), 0);
	assert_int_equal(l.attrs, MIGRATE_LIST_SENT);
	assert_int_equal(l.delim, '.');
	assert_memory_equal(l.name, "Sent \"Items\"", 12);
	fix_deinit(&f);
}

static void
test_migrate_parser_quoted_escapes(void **state)
{
	struct fixture f;
	const char text[] = "* LIST () NIL \"a\\\"b\\\\c\"\r\n";
	struct migrate_list l;

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_DONE);
	assert_int_equal(migrate_list_read(&f.r, &l), 0);
	assert_int_equal(l.delim, 0);
	assert_int_equal(l.name_len, 5);
	assert_memory_equal(l.name, "a\"b\\c", 5);
	fix_deinit(&f);
}

static void
test_migrate_parser_bad_grammar_refused(void **state)
{
	const char *texts[] = {
		"* 1 FETCH (UID 1\r\n",		/* unclosed list */
		"* 1 FETCH UID 1)\r\n",		/* stray ) */
		"* LIST (\"unended) \"/\" x\r\n",
		"A1 FETCH (UID 1)\r\n",		/* tagged, not a status */
		"\r\n",
		" * OK\r\n",
	};
	struct fixture f;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		fix_init(&f, 4096, 1024);
		assert_int_equal(feed_all(&f, texts[i], strlen(texts[i])),
		    PARSE_ERROR);
		fix_deinit(&f);
	}
}

static void
test_migrate_parser_deep_nesting_refused(void **state)
{
	struct fixture f;
	char text[200];
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(text, "* 1 FETCH ");
	for (int i = 0; i < 40; i++)
		text[n++] = '(';
	for (int i = 0; i < 40; i++)
		text[n++] = ')';
	text[n++] = '\r';
	text[n++] = '\n';
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, n), PARSE_ERROR);
	fix_deinit(&f);
}

static void
test_migrate_fetch_bad_numbers_refused(void **state)
{
	const char *texts[] = {
		"* 1 FETCH (UID 4294967296)\r\n",
		"* 1 FETCH (UID 0)\r\n",
		"* 1 FETCH (UID -3)\r\n",
		"* 1 FETCH (RFC822.SIZE 99999999999999999999999)\r\n",
		"* 1 FETCH (MODSEQ 5)\r\n",
		"* 1 FETCH (INTERNALDATE \"31-Foo-2020 00:00:00 +0000\")\r\n",
		"* 1 FETCH (FLAGS \\Seen)\r\n",
		"* 1 FETCH (UID)\r\n",
	};
	struct fixture f;
	struct migrate_fetch mf;
	bool is_truncated;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		fix_init(&f, 4096, 1024);
		assert_int_equal(feed_all(&f, texts[i], strlen(texts[i])),
		    PARSE_DONE);
		assert_int_equal(migrate_fetch_read(&f.r, &mf, &is_truncated),
		    -1);
		fix_deinit(&f);
	}
}

static void
test_migrate_fetch_keywords_bounded(void **state)
{
	struct fixture f;
	struct migrate_fetch mf;
	bool is_truncated;
	size_t cap = 64 * 1024, n = 0;
	char *text = malloc(cap);

	(void)state;
	n += (size_t)sprintf(text, "* 1 FETCH (FLAGS (");
	for (int i = 0; i < 2000; i++)
		n += (size_t)sprintf(text + n, "kw%05d ", i);
	n += (size_t)sprintf(text + n, "))\r\n");
	fix_init(&f, cap, 1024);
	assert_int_equal(feed_all(&f, text, n), PARSE_DONE);
	assert_int_equal(migrate_fetch_read(&f.r, &mf, &is_truncated), 0);
	assert_true(is_truncated);
	assert_true(strlen(mf.keywords) < MIGRATE_KEYWORDS_MAX);
	fix_deinit(&f);
	free(text);
}

struct ranges {
	uint32_t lo[8], hi[8];
	size_t n;
};

static void
range_cb(void *arg, uint32_t lo, uint32_t hi)
{
	struct ranges *r = arg;

	if (r->n < 8) {
		r->lo[r->n] = lo;
		r->hi[r->n] = hi;
	}
	r->n++;
}

static void
test_migrate_vanished_ranges_not_expanded(void **state)
{
	struct fixture f;
	const char text[] = "* VANISHED (EARLIER) 1:4294967295,7,9:8\r\n";
	const struct migrate_val *set;
	struct ranges r = { .n = 0 };

	(void)state;
	fix_init(&f, 4096, 1024);
	assert_int_equal(feed_all(&f, text, strlen(text)), PARSE_DONE);
	set = migrate_vanished_set(&f.r);
	assert_non_null(set);
	assert_int_equal(migrate_uidset_read(set->s, set->len, range_cb, &r),
	    0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.lo[0], 1);
	assert_int_equal(r.hi[0], 4294967295u);
	assert_int_equal(r.lo[2], 8);
	assert_int_equal(r.hi[2], 9);
	r.n = 0;
	assert_int_equal(migrate_uidset_read("1:", 2, range_cb, &r), -1);
	assert_int_equal(migrate_uidset_read("0", 1, range_cb, &r), -1);
	assert_int_equal(migrate_uidset_read("4294967296", 10, range_cb, &r),
	    -1);
	assert_int_equal(migrate_uidset_read("1,", 2, range_cb, &r), -1);
	fix_deinit(&f);
}

static void
test_migrate_dates(void **state)
{
	int64_t t;
	const char *d = "Mon, 2 Jan 2006 15:04:05 -0700";

	(void)state;
	assert_true(migrate_rfc5322_date_parse(d, strlen(d), &t));
	assert_int_equal(t, 1136239445);
	d = "2 Jan 2006 22:04 +0000";
	assert_true(migrate_rfc5322_date_parse(d, strlen(d), &t));
	assert_int_equal(t, 1136239440);
	d = "yesterday";
	assert_false(migrate_rfc5322_date_parse(d, strlen(d), &t));
	d = " 2-Jan-2006 22:04:05 +0000";
	assert_true(migrate_date_time_parse(d, strlen(d), &t));
	assert_int_equal(t, 1136239445);
	d = "02-Jan-2006 22:04:05 +0000 ";
	assert_false(migrate_date_time_parse(d, strlen(d), &t));
	d = "02-Jan-2006 25:04:05 +0000";
	assert_false(migrate_date_time_parse(d, strlen(d), &t));
}

static void
test_migrate_mutf7(void **state)
{
	char *s;

	(void)state;
	s = mutf7_decode("Entw&APw-rfe");
	assert_string_equal(s, "Entw\xc3\xbc" "rfe");
	free(s);
	s = mutf7_decode("&ZeVnLIqe-");
	assert_string_equal(s, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	free(s);
	s = mutf7_decode("a&-b");
	assert_string_equal(s, "a&b");
	free(s);
	assert_null(mutf7_decode("&AGE-"));	/* encoded "a" */
	assert_null(mutf7_decode("&AAA-"));	/* U+0000 */
	assert_null(mutf7_decode("&APw"));	/* unended */
	assert_null(mutf7_decode("\xc3\xbc"));
}

static void
check_name(const char *src, char delim, uint32_t attrs, const char *want,
    bool want_mapped)
{
	bool is_mapped;
	char *got = migrate_name_map(src, delim, attrs, &is_mapped);

	assert_string_equal(got, want);
	assert_int_equal(is_mapped, want_mapped);
	free(got);
}

static void
test_migrate_name_map_hostile_names_stay_inside(void **state)
{
	(void)state;
	check_name("INBOX", '/', 0, "INBOX", false);
	check_name("inbox.Sub", '.', 0, "INBOX/Sub", false);
	check_name("Work.Projects", '.', 0, "Work/Projects", false);
	check_name("a/b.c", '.', 0, "a_b/c", true);	/* "/" in a level */
	check_name("..", '/', 0, "_..", true);
	check_name("x/../../etc", '/', 0, "x/_../_../etc", true);
	check_name("/abs", '/', 0, "_/abs", true);	/* empty level */
	check_name("~root", '/', 0, "_~root", true);
	check_name("bad\x01\nname", '/', 0, "bad__name", true);
	check_name("Gesendete Objekte", '/', MIGRATE_LIST_SENT, "Sent",
	    false);
	check_name("[Gmail]/Papierkorb", '/', MIGRATE_LIST_TRASH, "Trash",
	    false);
	check_name("a*b%c", '/', 0, "a_b_c", true);	/* wildcards */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_parser_fetch_whole),
		cmocka_unit_test(test_migrate_parser_fetch_byte_at_a_time),
		cmocka_unit_test(test_migrate_parser_two_responses_in_one_read),
		cmocka_unit_test(test_migrate_parser_status_codes),
		cmocka_unit_test(
		    test_migrate_parser_literal_over_limit_refused_early),
		cmocka_unit_test(test_migrate_parser_huge_literal_size_refused),
		cmocka_unit_test(test_migrate_parser_long_line_refused),
		cmocka_unit_test(
		    test_migrate_parser_literal_inside_quotes_is_text),
		cmocka_unit_test(
		    test_migrate_parser_list_literal_name_and_special_use),
		cmocka_unit_test(test_migrate_parser_quoted_escapes),
		cmocka_unit_test(test_migrate_parser_bad_grammar_refused),
		cmocka_unit_test(test_migrate_parser_deep_nesting_refused),
		cmocka_unit_test(test_migrate_fetch_bad_numbers_refused),
		cmocka_unit_test(test_migrate_fetch_keywords_bounded),
		cmocka_unit_test(test_migrate_vanished_ranges_not_expanded),
		cmocka_unit_test(test_migrate_dates),
		cmocka_unit_test(test_migrate_mutf7),
		cmocka_unit_test(
		    test_migrate_name_map_hostile_names_stay_inside),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
