/*
 * Unit tests for the body on its way out (queue_text.c, queue_stuff): the
 * bytes the next hop receives. Every line end is CRLF (RFC 5321 §2.3.8),
 * whatever the stored body has (CRLF, a bare CR, a bare LF), and a dot
 * that starts a line is doubled (§4.5.2), after any of the three.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/queue_int.h"

/* Stuffs in whole, then one byte at a time, and checks both give want
 * (the final dot included). */
static void
expect_stuffed(const char *in, const char *want)
{
	size_t n = strlen(in), o;
	char *out = malloc(2 * n + 2 + QUEUE_STUFF_END_MAX);
	char *one = malloc(2 * n + 2 + QUEUE_STUFF_END_MAX);
	struct queue_stuff st;

	queue_stuff_init(&st);
	o = queue_stuff_feed(&st, in, n, out);
	o += queue_stuff_end(&st, out + o);
	assert_int_equal(o, strlen(want));
	assert_memory_equal(out, want, o);

	queue_stuff_init(&st);
	o = 0;
	for (size_t i = 0; i < n; i++)
		o += queue_stuff_feed(&st, in + i, 1, one + o);
	o += queue_stuff_end(&st, one + o);
	assert_int_equal(o, strlen(want));
	assert_memory_equal(one, want, o);
	free(out);
	free(one);
}

static void
test_queue_stuff_crlf_body_unchanged_but_dots(void **state)
{
	(void)state;
	expect_stuffed("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
	expect_stuffed(".x\r\n.\r\n", "..x\r\n..\r\n.\r\n");
	expect_stuffed("", ".\r\n");
	/* No final line end: one is added before the dot. */
	expect_stuffed("a", "a\r\n.\r\n");
}

static void
test_queue_stuff_bare_cr_is_a_line_end_and_its_dot_is_stuffed(void **state)
{
	(void)state;
	/* A peer that ends lines at a bare CR would see "." alone and end
	 * the message there (smuggling): the dot is doubled. */
	expect_stuffed("a\r.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
	expect_stuffed("a\r\r.x\r", "a\r\n\r\n..x\r\n.\r\n");
	expect_stuffed("a\r", "a\r\n.\r\n");
}

static void
test_queue_stuff_bare_lf_becomes_crlf_and_its_dot_is_stuffed(void **state)
{
	(void)state;
	expect_stuffed("a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n");
	expect_stuffed("\n\r\n.", "\r\n\r\n..\r\n.\r\n");
}

static void
test_queue_stuff_worst_case_fits_twice_the_input(void **state)
{
	char in[] = "\r.\r.\r.\r.";
	char out[2 * sizeof(in) + 2];
	struct queue_stuff st;
	size_t o;

	(void)state;
	queue_stuff_init(&st);
	o = queue_stuff_feed(&st, in, strlen(in), out);
	assert_true(o <= 2 * strlen(in) + 2);
	assert_memory_equal(out, "\r\n..\r\n..\r\n..\r\n..", o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_stuff_crlf_body_unchanged_but_dots),
		cmocka_unit_test(
		    test_queue_stuff_bare_cr_is_a_line_end_and_its_dot_is_stuffed),
		cmocka_unit_test(
		    test_queue_stuff_bare_lf_becomes_crlf_and_its_dot_is_stuffed),
		cmocka_unit_test(
		    test_queue_stuff_worst_case_fits_twice_the_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
