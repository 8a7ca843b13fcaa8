/*
 * Unit tests for the small IMAP helpers: modified UTF-7 both ways (RFC
 * 3501 §5.1.3, with the RFC's own example), dates of INTERNALDATE, APPEND
 * and SEARCH, and flag lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_int.h"
#include "lib/mutf7.h"

static void
mutf7_round_trip(const char *utf8, const char *mutf7)
{
	char *enc = mutf7_encode(utf8);
	char *dec = mutf7_decode(mutf7);

	assert_non_null(enc);
	assert_string_equal(enc, mutf7);
	assert_non_null(dec);
	assert_string_equal(dec, utf8);
	free(enc);
	free(dec);
}

static void
test_mutf7_examples(void **state)
{
	(void)state;
	/* RFC 3501 §5.1.3's example. */
	mutf7_round_trip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5"
	    "\xe6\x9c\xac\xe8\xaa\x9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	mutf7_round_trip("Foo/B\xc3\xa4r", "Foo/B&AOQ-r");
	mutf7_round_trip("Tom & Jerry", "Tom &- Jerry");
	mutf7_round_trip("", "");
	/* A character outside the BMP: a surrogate pair. */
	mutf7_round_trip("\xf0\x9f\x93\xa7", "&2D3c5w-");
}

static void
test_mutf7_refuses_bad_input(void **state)
{
	static const char *bad[] = {
		"&AGE-",	/* "a" encoded: printable ASCII must not be */
		"&U,BTFw",	/* unterminated */
		"&-&",		/* lone & at the end */
		"&2D0-",	/* lone high surrogate */
		"&3gA-",	/* lone low surrogate */
		"&AOQ=-",	/* not modified base64 */
		"caf\xc3\xa9",	/* 8-bit is not mUTF-7 */
		"&AOR-",	/* leftover bits not zero */
		"x&AAA-y",	/* U+0000 would cut the name to "x" */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec = mutf7_decode(bad[i]);

		if (dec != NULL)
			fail_msg("decoded \"%s\" as \"%s\"", bad[i], dec);
	}
	/* Not UTF-8: overlong "/" and a lone continuation byte. */
	assert_null(mutf7_encode("a\xc0\xafz"));
	assert_null(mutf7_encode("\x80"));
}

static void
test_imap_dates(void **state)
{
	char out[IMAP_DATE_TIME_LEN];
	int64_t t;

	(void)state;
	imap_date_time_format(1795436512, out);
	assert_string_equal(out, "23-Nov-2026 12:21:52 +0000");
	assert_true(imap_date_time_parse("23-Nov-2026 12:21:52 +0000", &t));
	assert_int_equal(t, 1795436512);
	/* The zone is subtracted: 14:21 at +0200 is 12:21 UTC. */
	assert_true(imap_date_time_parse("23-nov-2026 14:21:52 +0200", &t));
	assert_int_equal(t, 1795436512);
	assert_true(imap_date_time_parse(" 3-Nov-2026 00:00:00 -0100", &t));
	assert_int_equal(t, 1793667600);	/* 01:00 UTC */
	assert_false(imap_date_time_parse("23-Nov-2026 12:21:52", &t));
	assert_false(imap_date_time_parse("23-Foo-2026 12:21:52 +0000", &t));
	assert_false(imap_date_time_parse("23-Nov-2026 25:21:52 +0000", &t));
	assert_true(imap_date_parse("1-Feb-1994", &t));
	assert_int_equal(t, 760060800);
	assert_true(imap_date_parse("01-Feb-1994", &t));
	assert_false(imap_date_parse("1-Feb-94", &t));
	assert_false(imap_date_parse("1-Feb-1994x", &t));
}

static void
test_imap_flags_parse(void **state)
{
	struct imap_arg items[4] = {
		{ .kind = IMAP_ARG_ATOM, .str = "\\seen", .len = 5 },
		{ .kind = IMAP_ARG_ATOM, .str = "$Label1", .len = 7 },
		{ .kind = IMAP_ARG_ATOM, .str = "\\Deleted", .len = 8 },
		{ .kind = IMAP_ARG_ATOM, .str = "$label1", .len = 7 },
	};
	struct imap_arg list = { .kind = IMAP_ARG_LIST, .len = 4,
	    .list = items };
	struct imap_arg recent = { .kind = IMAP_ARG_ATOM, .str = "\\Recent",
	    .len = 7 };
	struct imap_arg quoted = { .kind = IMAP_ARG_QUOTED, .str = "x",
	    .len = 1 };
	uint32_t flags;
	char *kw;

	(void)state;
	assert_int_equal(imap_flags_parse(&list, &flags, &kw), 0);
	assert_int_equal(flags, STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	/* Keywords are case-insensitive: the second spelling is the same
	 * keyword. */
	assert_string_equal(kw, "$Label1");
	free(kw);
	assert_int_equal(imap_flags_parse(&recent, &flags, &kw), -1);
	assert_int_equal(imap_flags_parse(&quoted, &flags, &kw), -1);
	list.len = 0;
	assert_int_equal(imap_flags_parse(&list, &flags, &kw), 0);
	assert_int_equal(flags, 0);
	assert_null(kw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutf7_examples),
		cmocka_unit_test(test_mutf7_refuses_bad_input),
		cmocka_unit_test(test_imap_dates),
		cmocka_unit_test(test_imap_flags_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
