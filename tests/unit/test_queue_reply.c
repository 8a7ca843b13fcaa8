/*
 * Unit tests for the queue's SMTP reply reader (queue_reply.c): single
 * and multi-line replies (RFC 5321 §4.2.1), fed whole and one byte at a
 * time, EHLO keywords (STARTTLS, PIPELINING, SIZE n, DSN, 8BITMIME,
 * SMTPUTF8), enhanced status codes (RFC 3463), and the limits: mixed codes,
 * garbage, over-long lines and too many lines are errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "queue/queue_int.h"

static enum parse_rc
feed_all(struct evbuffer *in, const char *text, struct queue_reply *r)
{
	evbuffer_add(in, text, strlen(text));
	return queue_reply_read(in, r);
}

static void
test_queue_reply_single_line(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct queue_reply r;
	char buf[128];

	(void)state;
	assert_int_equal(feed_all(in, "250 2.1.0 Sender OK\r\n", &r),
	    PARSE_DONE);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 1);
	assert_string_equal(r.text, "250 2.1.0 Sender OK");
	assert_string_equal(queue_reply_status(&r, buf, sizeof(buf)),
	    "2.1.0");
	assert_int_equal(evbuffer_get_length(in), 0);
	/* A bare code is a reply too (RFC 5321 §4.2: text is optional). */
	assert_int_equal(feed_all(in, "354\r\n", &r), PARSE_DONE);
	assert_int_equal(r.code, 354);
	assert_string_equal(queue_reply_status(&r, buf, sizeof(buf)),
	    "3.0.0");
	evbuffer_free(in);
}

static void
test_queue_reply_multiline_one_byte_at_a_time(void **state)
{
	static const char ehlo[] = "250-mx.b.test hello\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 1000000\r\n"
	    "250-8BITMIME\r\n"
	    "250-starttls\r\n"
	    "250-DSN\r\n"
	    "250 SMTPUTF8\r\n"
	    "550 next\r\n";
	struct evbuffer *in = evbuffer_new();
	struct queue_reply r;
	size_t i;
	enum parse_rc rc = PARSE_MORE;

	(void)state;
	for (i = 0; i < sizeof(ehlo) - 1; i++) {
		evbuffer_add(in, ehlo + i, 1);
		rc = queue_reply_read(in, &r);
		if (rc != PARSE_MORE)
			break;
	}
	assert_int_equal(rc, PARSE_DONE);
	/* Done exactly at the end of the last line of the reply. */
	assert_int_equal(i, strlen(ehlo) - strlen("550 next\r\n") - 1);
	assert_int_equal(r.nlines, 7);
	assert_string_equal(r.text, "250-mx.b.test hello\n250-PIPELINING\n"
	    "250-SIZE 1000000\n250-8BITMIME\n250-starttls\n250-DSN\n"
	    "250 SMTPUTF8");
	queue_reply_ehlo(&r);
	assert_true(r.has_pipelining);
	assert_true(r.has_size);
	assert_int_equal(r.size_max, 1000000);
	assert_true(r.has_8bitmime);
	assert_true(r.has_starttls);
	assert_true(r.has_dsn);
	assert_true(r.has_smtputf8);
	evbuffer_free(in);
}

static void
test_queue_reply_line_and_status_of_a_refusal(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct queue_reply r;
	char line[256], st[16];

	(void)state;
	assert_int_equal(feed_all(in, "550-5.1.1 no such user\r\n"
	    "550 5.1.1 see https://example.net/\r\n", &r), PARSE_DONE);
	assert_string_equal(queue_reply_line(&r, line, sizeof(line)),
	    "550-5.1.1 no such user 550 5.1.1 see https://example.net/");
	assert_string_equal(queue_reply_status(&r, st, sizeof(st)), "5.1.1");
	/* A status whose class disagrees with the code is not taken. */
	assert_int_equal(feed_all(in, "451 5.1.1 odd\r\n", &r), PARSE_DONE);
	assert_string_equal(queue_reply_status(&r, st, sizeof(st)), "4.0.0");
	/* A bare LF ends a line too (lax servers). */
	assert_int_equal(feed_all(in, "221 bye\n", &r), PARSE_DONE);
	assert_int_equal(r.code, 221);
	evbuffer_free(in);
}

static void
test_queue_reply_refuses_garbage_and_excess(void **state)
{
	struct evbuffer *in;
	struct queue_reply r;
	char big[QUEUE_REPLY_LINE_MAX + 16];

	(void)state;
	in = evbuffer_new();
	assert_int_equal(feed_all(in, "250-a\r\n251 b\r\n", &r), PARSE_ERROR);
	evbuffer_free(in);
	in = evbuffer_new();
	assert_int_equal(feed_all(in, "hello\r\n", &r), PARSE_ERROR);
	evbuffer_free(in);
	in = evbuffer_new();
	assert_int_equal(feed_all(in, "199 too low\r\n", &r), PARSE_ERROR);
	evbuffer_free(in);
	in = evbuffer_new();
	assert_int_equal(feed_all(in, "250x\r\n", &r), PARSE_ERROR);
	evbuffer_free(in);
	/* A line longer than the limit, even before its end arrives. */
	in = evbuffer_new();
	memset(big, 'a', sizeof(big));
	memcpy(big, "250 ", 4);
	evbuffer_add(in, big, sizeof(big));
	assert_int_equal(queue_reply_read(in, &r), PARSE_ERROR);
	evbuffer_free(in);
	/* More lines than the limit. */
	in = evbuffer_new();
	for (int i = 0; i <= QUEUE_REPLY_LINES_MAX; i++)
		evbuffer_add(in, "250-x\r\n", 7);
	evbuffer_add(in, "250 x\r\n", 7);
	assert_int_equal(queue_reply_read(in, &r), PARSE_ERROR);
	evbuffer_free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_reply_single_line),
		cmocka_unit_test(
		    test_queue_reply_multiline_one_byte_at_a_time),
		cmocka_unit_test(test_queue_reply_line_and_status_of_a_refusal),
		cmocka_unit_test(test_queue_reply_refuses_garbage_and_excess),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
