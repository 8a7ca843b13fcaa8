/*
 * Unit tests for pop3_parse.c: POP3 command lines (RFC 1939 §3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pop3/pop3_int.h"

static int
parse(const char *text, struct pop3_line *pl)
{
	return pop3_line_parse(text, strlen(text), pl);
}

static void
test_pop3_parse_keyword_alone_and_with_argument(void **state)
{
	struct pop3_line pl;

	(void)state;
	assert_int_equal(parse("stat", &pl), 0);
	assert_string_equal(pl.keyword, "STAT");
	assert_null(pl.arg);
	assert_int_equal(parse("Top 1 10", &pl), 0);
	assert_string_equal(pl.keyword, "TOP");
	assert_int_equal(pl.arg_len, 4);
	assert_memory_equal(pl.arg, "1 10", 4);
	/* An empty argument after the space is still an argument. */
	assert_int_equal(parse("USER ", &pl), 0);
	assert_non_null(pl.arg);
	assert_int_equal(pl.arg_len, 0);
}

static void
test_pop3_parse_refuses_what_is_no_keyword(void **state)
{
	struct pop3_line pl;

	(void)state;
	assert_int_equal(parse("", &pl), -1);
	assert_int_equal(parse(" STAT", &pl), -1);
	assert_int_equal(parse("STATS", &pl), -1);
	assert_int_equal(parse("LIST1", &pl), -1);
	assert_int_equal(parse("RETR\t1", &pl), -1);
	assert_int_equal(pop3_line_parse("DE\0LE", 5, &pl), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_pop3_parse_keyword_alone_and_with_argument),
		cmocka_unit_test(test_pop3_parse_refuses_what_is_no_keyword),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
