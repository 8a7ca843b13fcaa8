/*
 * test_smtp_data: the DATA decoder and the MAIL/RCPT path parser. The
 * decoder's end of data is CRLF.CRLF and nothing else (the smuggling
 * class, CVE-2023-51764).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_int.h"

/* Feeds in (with step bytes per call) and returns what was decoded; sets
 * *done_at to the bytes consumed when the end was found, or -1. */
static char *
decode(const char *in, size_t len, size_t step, long *done_at)
{
	struct smtp_data d;
	char *all = calloc(1, 3 * len + 16), out[64];
	size_t total = 0, off = 0;

	smtp_data_init(&d);
	*done_at = -1;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		size_t used, olen;
		enum parse_rc rc;

		assert_true(n * 2 + 4 <= sizeof(out));
		rc = smtp_data_feed(&d, in + off, n, &used, out, &olen);
		memcpy(all + total, out, olen);
		total += olen;
		off += used;
		if (rc == PARSE_DONE) {
			*done_at = (long)off;
			break;
		}
		assert_int_equal(used, n);
	}
	all[total] = '\0';
	return all;
}

static void
check_every_step(const char *in, const char *want, long want_done)
{
	for (size_t step = 1; step <= 16; step++) {
		long done;
		char *got = decode(in, strlen(in), step, &done);

		assert_string_equal(got, want);
		assert_int_equal(done, want_done);
		free(got);
	}
}

static void
test_smtp_data_ends_at_crlf_dot_crlf(void **state)
{
	static const char in[] = "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";

	(void)state;
	check_every_step(in, "Subject: x\r\n\r\nhello\r\n",
	    (long)strlen("Subject: x\r\n\r\nhello\r\n.\r\n"));
}

static void
test_smtp_data_dot_stuffing_removed(void **state)
{
	(void)state;
	check_every_step("..leading\r\n...\r\n.\r\n", ".leading\r\n..\r\n",
	    19);
}

static void
test_smtp_data_empty_message(void **state)
{
	(void)state;
	check_every_step(".\r\n", "", 3);
}

static void
test_smtp_data_bare_lf_dot_is_not_the_end(void **state)
{
	static const char in[] = "a\n.\nMAIL FROM:<x@y>\r\n.\r\n";

	(void)state;
	/* Bare LFs become CRLF; ".\n" is a line holding a dot. */
	check_every_step(in, "a\r\n.\r\nMAIL FROM:<x@y>\r\n",
	    (long)strlen(in));
}

static void
test_smtp_data_bare_cr_dot_is_not_the_end(void **state)
{
	static const char in[] = "a\r.\rb\r\n.\r\n";

	(void)state;
	check_every_step(in, "a\r\n.\r\nb\r\n", (long)strlen(in));
}

static void
test_smtp_data_lf_dot_crlf_is_not_the_end(void **state)
{
	static const char in[] = "a\n.\r\nb\r\n.\r\n";

	(void)state;
	check_every_step(in, "a\r\n.\r\nb\r\n", (long)strlen(in));
}

static void
test_smtp_data_crlf_dot_lf_is_not_the_end(void **state)
{
	static const char in[] = "a\r\n.\nb\r\n.\r\n";

	(void)state;
	check_every_step(in, "a\r\n.\r\nb\r\n", (long)strlen(in));
}

static void
test_smtp_data_8bit_and_long_lines_kept(void **state)
{
	char in[5000], want[5000];
	long done;
	char *got;

	(void)state;
	memset(in, 0xe9, 3000);
	memcpy(in + 3000, "\r\n.\r\n", 6);
	memcpy(want, in, 3002);
	want[3002] = '\0';
	got = decode(in, strlen(in), 7, &done);
	assert_memory_equal(got, want, 3003);
	assert_int_equal(done, 3005);
	free(got);
}

static void
test_smtp_path_parses_params(void **state)
{
	struct smtp_path p;
	char err[128];
	static const char line[] = "FROM:<a.b@example.com> SIZE=100 BODY=8BITMIME";

	(void)state;
	assert_int_equal(smtp_path_parse(line, strlen(line), "FROM:", &p, err,
	    sizeof(err)), 0);
	assert_string_equal(p.address, "a.b@example.com");
	assert_int_equal(p.nparams, 2);
	assert_string_equal(smtp_path_param(&p, "SIZE", NULL), "100");
	assert_string_equal(smtp_path_param(&p, "BODY", NULL), "8BITMIME");
	smtp_path_deinit(&p);
}

static void
test_smtp_path_null_and_quoted(void **state)
{
	struct smtp_path p;
	char err[128];
	static const char quoted[] = "TO:<\"john doe\"@example.com>";

	(void)state;
	assert_int_equal(smtp_path_parse("FROM:<>", 7, "FROM:", &p, err,
	    sizeof(err)), 0);
	assert_string_equal(p.address, "");
	smtp_path_deinit(&p);
	assert_int_equal(smtp_path_parse(quoted, strlen(quoted), "TO:", &p,
	    err, sizeof(err)), 0);
	assert_string_equal(p.address, "\"john doe\"@example.com");
	smtp_path_deinit(&p);
}

static void
test_smtp_path_refuses_bad_syntax(void **state)
{
	static const char *const bad[] = {
		"FROM:a@b", "FROM:<a@b", "FROM:<a..b@c>", "FROM:<@b>",
		"FROM:<a@>", "FROM:<a@b>X", "TO:<a@b>", "FROM:<a@b> =x",
		"FROM:<a@-b>",
	};
	struct smtp_path p;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(smtp_path_parse(bad[i], strlen(bad[i]),
		    "FROM:", &p, err, sizeof(err)), -1);
		assert_true(err[0] == '5');
	}
}

static void
test_smtp_path_utf8_flagged(void **state)
{
	struct smtp_path p;
	char err[128];
	static const char line[] = "TO:<j\xc3\xb6rg@example.com>";

	(void)state;
	assert_int_equal(smtp_path_parse(line, strlen(line), "TO:", &p, err,
	    sizeof(err)), 0);
	assert_true(p.is_utf8);
	smtp_path_deinit(&p);
}

/* Feeds in to the BDAT normaliser step bytes at a time, then ends it. */
static char *
bdat_decode(const char *in, size_t len, size_t step)
{
	struct smtp_data d;
	char *all = calloc(1, 2 * len + 16);
	size_t total = 0;

	smtp_data_init(&d);
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		total += smtp_data_bdat_feed(&d, in + off, n, all + total);
	}
	total += smtp_data_bdat_end(&d, all + total);
	all[total] = '\0';
	return all;
}

static void
test_smtp_bdat_bare_cr_and_lf_become_crlf(void **state)
{
	static const char in[] = "a\rb\nc\r\nd\r\r\ne\n\rf\r";
	static const char want[] =
	    "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\nf\r\n";

	(void)state;
	/* Every split, the CR of a CRLF in one chunk and its LF in the
	 * next included. */
	for (size_t step = 1; step <= sizeof(in); step++) {
		char *got = bdat_decode(in, strlen(in), step);

		assert_string_equal(got, want);
		free(got);
	}
}

/* Found by fuzz_smtp: a CR held from one call came out before the next
 * call's own bytes, so one byte could make three, past the 2 * len bytes
 * the caller's buffer holds (one byte over a stack buffer in BDAT). */
static void
test_smtp_bdat_output_within_twice_the_input(void **state)
{
	static const char *const pieces[] = { "a\r", "b", "\r", "\n", "\r",
	    "\r", "c\r" };
	struct smtp_data d;
	char out[8];

	(void)state;
	smtp_data_init(&d);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		size_t n = strlen(pieces[i]);

		assert_true(smtp_data_bdat_feed(&d, pieces[i], n, out) <=
		    2 * n);
	}
	assert_true(smtp_data_bdat_end(&d, out) <= 2);
}

static void
test_smtp_bdat_dots_are_not_unstuffed(void **state)
{
	static const char in[] = "..x\r\n.\r\n";
	char *got;

	(void)state;
	got = bdat_decode(in, strlen(in), 3);
	assert_string_equal(got, in);
	free(got);
}

static void
test_smtp_path_refuses_control_characters(void **state)
{
	static const char *const bad[] = {
		"FROM:<a\rb@example.com>", "FROM:<a@exa\rmple.com>",
		"FROM:<a@[1.2.3.4\r]>", "FROM:<a@[\r]>",
		"FROM:<\"a\rb\"@example.com>", "FROM:<a@b.c> ENVID=x\ry",
		"FROM:<a@b.c>\x7f", "FROM:<a@b.c>\t",
	};
	struct smtp_path p;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(smtp_path_parse(bad[i], strlen(bad[i]),
		    "FROM:", &p, err, sizeof(err)), -1);
		assert_string_equal(err, "501 5.5.2 Control characters are "
		    "not allowed in addresses or parameters");
	}
}

static void
test_smtp_path_address_literals(void **state)
{
	static const char *const good[] = {
		"FROM:<a@[192.0.2.1]>", "FROM:<a@[IPv6:2001:db8::1]>",
		"FROM:<a@[x-tag:any-content]>",
	};
	static const char *const bad[] = {
		"FROM:<a@[]>", "FROM:<a@[192.0.2.300]>", "FROM:<a@[IPv6:zz]>",
		"FROM:<a@[1.2.3.4 ]>", "FROM:<a@[:x]>", "FROM:<a@[tag:]>",
		"FROM:<a@[a[b]>", "FROM:<a@[1.2.3.4]x>", "FROM:<a@[t_g:x]>",
	};
	struct smtp_path p;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(smtp_path_parse(good[i], strlen(good[i]),
		    "FROM:", &p, err, sizeof(err)), 0);
		smtp_path_deinit(&p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(smtp_path_parse(bad[i], strlen(bad[i]),
		    "FROM:", &p, err, sizeof(err)), -1);
		assert_string_equal(err, "501 5.1.3 Bad address syntax");
	}
}

static void
test_smtp_path_bare_postmaster_only_as_recipient(void **state)
{
	struct smtp_path p;
	char err[128];

	(void)state;
	assert_int_equal(smtp_path_parse("TO:<PostMaster>", 15, "TO:", &p,
	    err, sizeof(err)), 0);
	assert_string_equal(p.address, "postmaster");
	smtp_path_deinit(&p);
	assert_int_equal(smtp_path_parse("FROM:<postmaster>", 17, "FROM:", &p,
	    err, sizeof(err)), -1);
	assert_int_equal(smtp_path_parse("TO:<webmaster>", 14, "TO:", &p,
	    err, sizeof(err)), -1);
}

static void
test_smtp_helo_refuses_control_characters(void **state)
{
	char err[128];

	(void)state;
	assert_int_equal(smtp_helo_check("client.example", 14, err,
	    sizeof(err)), 0);
	assert_int_equal(smtp_helo_check("[192.0.2.1]", 11, err,
	    sizeof(err)), 0);
	assert_int_equal(smtp_helo_check("a\rb", 3, err, sizeof(err)), -1);
	assert_string_equal(err, "501 5.5.2 Control characters are not "
	    "allowed in the host name");
	assert_int_equal(smtp_helo_check("a\0b", 3, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_data_ends_at_crlf_dot_crlf),
		cmocka_unit_test(test_smtp_data_dot_stuffing_removed),
		cmocka_unit_test(test_smtp_data_empty_message),
		cmocka_unit_test(test_smtp_data_bare_lf_dot_is_not_the_end),
		cmocka_unit_test(test_smtp_data_bare_cr_dot_is_not_the_end),
		cmocka_unit_test(test_smtp_data_lf_dot_crlf_is_not_the_end),
		cmocka_unit_test(test_smtp_data_crlf_dot_lf_is_not_the_end),
		cmocka_unit_test(test_smtp_data_8bit_and_long_lines_kept),
		cmocka_unit_test(test_smtp_path_parses_params),
		cmocka_unit_test(test_smtp_path_null_and_quoted),
		cmocka_unit_test(test_smtp_path_refuses_bad_syntax),
		cmocka_unit_test(test_smtp_path_utf8_flagged),
		cmocka_unit_test(test_smtp_bdat_bare_cr_and_lf_become_crlf),
		cmocka_unit_test(test_smtp_bdat_dots_are_not_unstuffed),
		cmocka_unit_test(test_smtp_bdat_output_within_twice_the_input),
		cmocka_unit_test(test_smtp_path_refuses_control_characters),
		cmocka_unit_test(test_smtp_path_address_literals),
		cmocka_unit_test(test_smtp_path_bare_postmaster_only_as_recipient),
		cmocka_unit_test(test_smtp_helo_refuses_control_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
