/*
 * Unit tests for the line reader of lib/parse: CRLF and bare LF, lines
 * split across reads down to one byte at a time, the max line length at
 * and one past the limit, overlong lines reported once, and compaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/parse.h"

struct reader {
	struct buf b;
	struct line_reader r;
};

static void
reader_init(struct reader *rd, size_t max, size_t cap)
{
	buf_init(&rd->b, cap);
	line_reader_init(&rd->r, max);
}

static void
reader_deinit(struct reader *rd)
{
	buf_deinit(&rd->b);
}

static void
feed_n(struct reader *rd, const char *bytes, size_t n)
{
	assert_int_equal(buf_append(&rd->b, bytes, n), 0);
}

static void
feed(struct reader *rd, const char *text)
{
	feed_n(rd, text, strlen(text));
}

/* Calls line_reader_next() once, checking what every answer promises. */
static enum parse_rc
next(struct reader *rd, const char **line_out, size_t *len_out)
{
	enum parse_rc rc;

	*line_out = NULL;
	*len_out = SIZE_MAX;
	rc = line_reader_next(&rd->r, &rd->b, line_out, len_out);
	assert_true(rd->r.off <= rd->b.len);
	if (rc == PARSE_DONE) {
		assert_non_null(*line_out);
		assert_true(*len_out < rd->r.max);
		assert_true(*line_out >= rd->b.data);
		assert_true(*line_out + *len_out < rd->b.data + rd->b.len);
		assert_null(memchr(*line_out, '\n', *len_out));
	}
	return rc;
}

#define assert_next_line(rd, want) \
	assert_next_line_n((rd), (want), strlen(want))

static void
assert_next_line_n(struct reader *rd, const char *want, size_t want_len)
{
	const char *line;
	size_t len;

	assert_int_equal(next(rd, &line, &len), PARSE_DONE);
	assert_int_equal(len, want_len);
	assert_memory_equal(line, want, want_len);
}

static void
assert_next_rc(struct reader *rd, enum parse_rc want)
{
	const char *line;
	size_t len;

	assert_int_equal(next(rd, &line, &len), want);
}

/* Reads until PARSE_MORE, appending "[line]" for each line and "!" for
 * each error to log (size bytes). */
static void
drain(struct reader *rd, char *log, size_t size)
{
	for (;;) {
		const char *line;
		size_t len, used = strlen(log);
		enum parse_rc rc = next(rd, &line, &len);

		if (rc == PARSE_MORE)
			return;
		if (rc == PARSE_ERROR)
			snprintf(log + used, size - used, "!");
		else
			snprintf(log + used, size - used, "[%.*s]", (int)len,
			    line);
	}
}

static void
test_line_reader_crlf_line_returned_without_line_end(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "EHLO mx.example.org\r\n");
	assert_next_line(&rd, "EHLO mx.example.org");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_bare_lf_line_returned_without_line_end(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "a1 NOOP\n");
	assert_next_line(&rd, "a1 NOOP");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_lines_of_one_feed_returned_in_order(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "USER a\r\nPASS b\nSTAT\r\nQUI");
	assert_next_line(&rd, "USER a");
	assert_next_line(&rd, "PASS b");
	assert_next_line(&rd, "STAT");
	assert_next_rc(&rd, PARSE_MORE);
	/* Asking again without new bytes changes nothing. */
	assert_next_rc(&rd, PARSE_MORE);
	feed(&rd, "T\r\n");
	assert_next_line(&rd, "QUIT");
	reader_deinit(&rd);
}

static void
test_line_reader_line_split_across_feeds(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "MAIL FROM:<al");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "ice@example.org>");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, " SIZE=100\r\n");
	assert_next_line(&rd, "MAIL FROM:<alice@example.org> SIZE=100");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_line_split_between_cr_and_lf(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "DATA\r");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "\n");
	assert_next_line(&rd, "DATA");
	reader_deinit(&rd);
}

static void
test_line_reader_one_byte_at_a_time_more_until_last_byte(void **state)
{
	static const char text[] = "RCPT TO:<bob@example.org>\r\n"
	    "\r\n"
	    "x\n";
	static const size_t ends[] = { 26, 28, 30 };	/* LF offsets */
	struct reader rd;
	size_t nlines = 0;

	(void)state;
	reader_init(&rd, 64, 64);
	for (size_t i = 0; i < sizeof(text) - 1; i++) {
		const char *line;
		size_t len;
		enum parse_rc rc;

		feed_n(&rd, &text[i], 1);
		rc = next(&rd, &line, &len);
		if (nlines < 3 && i == ends[nlines]) {
			assert_int_equal(rc, PARSE_DONE);
			nlines++;
			assert_next_rc(&rd, PARSE_MORE);
		} else {
			assert_int_equal(rc, PARSE_MORE);
		}
		line_reader_compact(&rd.r, &rd.b);
	}
	assert_int_equal(nlines, 3);
	assert_int_equal(rd.b.len, 0);
	reader_deinit(&rd);
}

static void
test_line_reader_one_byte_at_a_time_gives_the_whole_line(void **state)
{
	static const char text[] = "A001 LOGIN alice secret\r\n";
	struct reader rd;
	const char *line = NULL;
	size_t len = 0;

	(void)state;
	reader_init(&rd, 64, 64);
	for (size_t i = 0; i < sizeof(text) - 2; i++) {
		feed_n(&rd, &text[i], 1);
		assert_next_rc(&rd, PARSE_MORE);
	}
	feed(&rd, "\n");
	assert_int_equal(next(&rd, &line, &len), PARSE_DONE);
	assert_int_equal(len, sizeof(text) - 3);
	assert_memory_equal(line, text, len);
	reader_deinit(&rd);
}

static void
test_line_reader_empty_line_returned_empty(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "\r\n\n\r\r\n");
	assert_next_line(&rd, "");
	assert_next_line(&rd, "");
	/* Only the CR right before the LF is line end. */
	assert_next_line(&rd, "\r");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_only_the_cr_before_lf_removed(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "a\rb\r\r\nc\r \n");
	assert_next_line(&rd, "a\rb\r");
	assert_next_line(&rd, "c\r ");
	reader_deinit(&rd);
}

static void
test_line_reader_nul_bytes_kept_inside_line(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed_n(&rd, "a\0b\r\n", 5);
	assert_next_line_n(&rd, "a\0b", 3);
	reader_deinit(&rd);
}

static void
test_line_reader_line_at_max_accepted(void **state)
{
	struct reader rd;

	(void)state;
	/* max counts the line end: 6 bytes and CRLF, or 7 and LF. */
	reader_init(&rd, 8, 64);
	feed(&rd, "123456\r\n1234567\n");
	assert_next_line(&rd, "123456");
	assert_next_line(&rd, "1234567");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_line_one_over_max_refused(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 8, 64);
	feed(&rd, "1234567\r\nok\r\n12345678\nok2\n");
	assert_next_rc(&rd, PARSE_ERROR);
	assert_next_line(&rd, "ok");
	assert_next_rc(&rd, PARSE_ERROR);
	assert_next_line(&rd, "ok2");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_max_bytes_without_lf_refused_early(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 8, 64);
	/* 7 bytes may still end with LF: wait. */
	feed(&rd, "1234567");
	assert_next_rc(&rd, PARSE_MORE);
	feed(&rd, "\n");
	assert_next_line(&rd, "1234567");
	/* 8 bytes without LF can only become a line of 9 or more. */
	feed(&rd, "12345678");
	assert_next_rc(&rd, PARSE_ERROR);
	assert_next_rc(&rd, PARSE_MORE);
	feed(&rd, "\nnext\n");
	assert_next_line(&rd, "next");
	reader_deinit(&rd);
}

static void
test_line_reader_overlong_line_reported_once(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 16, 256);
	feed(&rd, "this line is far too long for sixteen\r\nNOOP\r\n");
	assert_next_rc(&rd, PARSE_ERROR);
	assert_next_line(&rd, "NOOP");
	assert_next_rc(&rd, PARSE_MORE);
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_overlong_line_over_feeds_reported_once(void **state)
{
	static const char junk[] = "xxxxxxxxxxxxxxxxxxxx";	/* 20 bytes */
	struct reader rd;

	(void)state;
	reader_init(&rd, 16, 32);
	feed(&rd, junk);
	assert_next_rc(&rd, PARSE_ERROR);
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	/* The discarded bytes are gone, so the cap never fills up. */
	assert_int_equal(rd.b.len, 0);
	for (int i = 0; i < 10; i++) {
		feed(&rd, junk);
		assert_next_rc(&rd, PARSE_MORE);
		line_reader_compact(&rd.r, &rd.b);
		assert_int_equal(rd.b.len, 0);
	}
	feed(&rd, "end of it\r\nQUIT\r\n");
	assert_next_line(&rd, "QUIT");
	assert_next_rc(&rd, PARSE_MORE);
	reader_deinit(&rd);
}

static void
test_line_reader_overlong_line_bytewise_reported_once(void **state)
{
	struct reader rd;
	size_t nerrors = 0;

	(void)state;
	reader_init(&rd, 8, 8);
	for (size_t i = 0; i < 40; i++) {
		const char *line;
		size_t len;
		enum parse_rc rc;

		feed(&rd, "y");
		rc = next(&rd, &line, &len);
		/* Refused as soon as the 8th byte is not a LF. */
		assert_int_equal(rc, i == 7 ? PARSE_ERROR : PARSE_MORE);
		if (rc == PARSE_ERROR)
			nerrors++;
		line_reader_compact(&rd.r, &rd.b);
	}
	assert_int_equal(nerrors, 1);
	feed(&rd, "\r");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "\n");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "o");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "k\n");
	assert_next_line(&rd, "ok");
	reader_deinit(&rd);
}

static void
test_line_reader_each_overlong_line_reported_once(void **state)
{
	struct reader rd;
	char log[256] = "";

	(void)state;
	reader_init(&rd, 6, 256);
	feed(&rd, "a\nlong line one\nb\nlong line two\nlong line three");
	drain(&rd, log, sizeof(log));
	assert_string_equal(log, "[a]![b]!!");
	line_reader_compact(&rd.r, &rd.b);
	assert_int_equal(rd.b.len, 0);
	feed(&rd, " still\nc\n");
	drain(&rd, log, sizeof(log));
	assert_string_equal(log, "[a]![b]!![c]");
	reader_deinit(&rd);
}

static void
test_line_reader_compact_keeps_unread_tail(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "one\r\ntwo\r\ntw");
	assert_next_line(&rd, "one");
	assert_next_line(&rd, "two");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	assert_int_equal(rd.r.off, 0);
	assert_int_equal(rd.b.len, 2);
	assert_memory_equal(rd.b.data, "tw", 2);
	feed(&rd, "o\r\n");
	assert_next_line(&rd, "two");
	reader_deinit(&rd);
}

static void
test_line_reader_compact_between_lines_keeps_next_line(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	feed(&rd, "first\nsecond\nthi");
	assert_next_line(&rd, "first");
	/* Compact before the buffer is read to its end. */
	line_reader_compact(&rd.r, &rd.b);
	assert_int_equal(rd.b.len, strlen("second\nthi"));
	assert_next_line(&rd, "second");
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	feed(&rd, "rd\n");
	assert_next_line(&rd, "third");
	reader_deinit(&rd);
}

static void
test_line_reader_empty_buf_needs_more(void **state)
{
	struct reader rd;

	(void)state;
	reader_init(&rd, 512, 4096);
	/* Nothing was ever appended: the buf has no data at all. */
	assert_next_rc(&rd, PARSE_MORE);
	line_reader_compact(&rd.r, &rd.b);
	assert_next_rc(&rd, PARSE_MORE);
	feed(&rd, "x\n");
	assert_next_line(&rd, "x");
	reader_deinit(&rd);
}

static void
test_line_reader_every_split_point_gives_the_same_lines(void **state)
{
	static const char text[] = "HELO a\r\n"
	    "\r\n"
	    "0123456789abcdef\r\n"		/* 18 bytes: too long */
	    "0123456789ab\r\n"		/* 14 bytes: the max */
	    "0123456789abc\r\n"		/* 15 bytes: too long */
	    "x\n"
	    "0123456789abcdefghijklmnop"	/* too long, no LF yet */
	    "qrs\nlast\r\n";
	static const char want[] = "[HELO a][]![0123456789ab]![x]![last]";
	const size_t n = sizeof(text) - 1;

	(void)state;
	for (size_t k = 0; k <= n; k++) {
		struct reader rd;
		char log[256] = "";

		reader_init(&rd, 14, 256);
		feed_n(&rd, text, k);
		drain(&rd, log, sizeof(log));
		line_reader_compact(&rd.r, &rd.b);
		feed_n(&rd, text + k, n - k);
		drain(&rd, log, sizeof(log));
		if (strcmp(log, want) != 0)
			fail_msg("split at %zu: got %s, want %s", k, log,
			    want);
		reader_deinit(&rd);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_line_reader_crlf_line_returned_without_line_end),
		cmocka_unit_test(
		    test_line_reader_bare_lf_line_returned_without_line_end),
		cmocka_unit_test(
		    test_line_reader_lines_of_one_feed_returned_in_order),
		cmocka_unit_test(test_line_reader_line_split_across_feeds),
		cmocka_unit_test(test_line_reader_line_split_between_cr_and_lf),
		cmocka_unit_test(
		    test_line_reader_one_byte_at_a_time_more_until_last_byte),
		cmocka_unit_test(
		    test_line_reader_one_byte_at_a_time_gives_the_whole_line),
		cmocka_unit_test(test_line_reader_empty_line_returned_empty),
		cmocka_unit_test(
		    test_line_reader_only_the_cr_before_lf_removed),
		cmocka_unit_test(test_line_reader_nul_bytes_kept_inside_line),
		cmocka_unit_test(test_line_reader_line_at_max_accepted),
		cmocka_unit_test(test_line_reader_line_one_over_max_refused),
		cmocka_unit_test(
		    test_line_reader_max_bytes_without_lf_refused_early),
		cmocka_unit_test(test_line_reader_overlong_line_reported_once),
		cmocka_unit_test(
		    test_line_reader_overlong_line_over_feeds_reported_once),
		cmocka_unit_test(
		    test_line_reader_overlong_line_bytewise_reported_once),
		cmocka_unit_test(
		    test_line_reader_each_overlong_line_reported_once),
		cmocka_unit_test(test_line_reader_compact_keeps_unread_tail),
		cmocka_unit_test(
		    test_line_reader_compact_between_lines_keeps_next_line),
		cmocka_unit_test(test_line_reader_empty_buf_needs_more),
		cmocka_unit_test(
		    test_line_reader_every_split_point_gives_the_same_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
