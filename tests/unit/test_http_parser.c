/*
 * Unit tests for http_parser.c: HTTP/1.1 requests (RFC 9112), fed whole
 * and one byte at a time, and the refusals that keep requests from being
 * smuggled past us.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_parser.h"

static const struct http_limits LIM = {
	.line_max = 512,
	.head_max = 2048,
	.headers_max = 8,
	.body_max = 1024,
};

/* Feeds text whole into a fresh parser; returns the result and leaves
 * what was not consumed in *left_out. */
static enum parse_rc
feed_whole(struct http_parser *p, const char *text, size_t *left_out)
{
	struct buf in;
	enum parse_rc rc;

	buf_init(&in, 65536);
	buf_append(&in, text, strlen(text));
	http_parser_init(p, &LIM);
	rc = http_parser_feed(p, &in);
	if (left_out != NULL)
		*left_out = in.len;
	buf_deinit(&in);
	return rc;
}

/* Feeds text one byte at a time: PARSE_MORE until the last byte. */
static enum parse_rc
feed_bytes(struct http_parser *p, const char *text)
{
	struct buf in;
	enum parse_rc rc = PARSE_MORE;
	size_t n = strlen(text);

	buf_init(&in, 16);
	http_parser_init(p, &LIM);
	for (size_t i = 0; i < n; i++) {
		buf_append(&in, text + i, 1);
		rc = http_parser_feed(p, &in);
		if (rc != PARSE_MORE) {
			/* Nothing may be left unread but past the end. */
			assert_int_equal(i, n - 1);
			break;
		}
		assert_int_equal(in.len, 0);
	}
	buf_deinit(&in);
	return rc;
}

static int
status_of(const char *text)
{
	struct http_parser p;
	int whole, bytes;

	assert_int_equal(feed_whole(&p, text, NULL), PARSE_ERROR);
	whole = p.status;
	http_parser_deinit(&p);
	/* A byte at a time, the refusal is the same. */
	{
		struct buf in;
		enum parse_rc rc = PARSE_MORE;

		buf_init(&in, 16);
		http_parser_init(&p, &LIM);
		for (size_t i = 0; text[i] && rc == PARSE_MORE; i++) {
			buf_append(&in, text + i, 1);
			rc = http_parser_feed(&p, &in);
		}
		assert_int_equal(rc, PARSE_ERROR);
		bytes = p.status;
		buf_deinit(&in);
		http_parser_deinit(&p);
	}
	assert_int_equal(whole, bytes);
	return whole;
}

static void
test_http_parser_get_with_query_and_headers(void **state)
{
	struct http_parser p;
	static const char req[] = "GET /mail/config-v1.1.xml?emailaddress="
	    "a%40b.test HTTP/1.1\r\nHost: autoconfig.b.test\r\n"
	    "Accept-Encoding:  gzip , br \r\nX-Empty:\r\n\r\n";

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		enum parse_rc rc = pass == 0 ? feed_whole(&p, req, NULL) :
		    feed_bytes(&p, req);

		assert_int_equal(rc, PARSE_DONE);
		assert_int_equal(p.req.method, HTTP_METHOD_GET);
		assert_string_equal(p.req.path, "/mail/config-v1.1.xml");
		assert_string_equal(p.req.query, "emailaddress=a%40b.test");
		assert_int_equal(p.req.minor, 1);
		assert_string_equal(p.req.host, "autoconfig.b.test");
		assert_string_equal(http_request_header(&p.req,
		    "accept-encoding"), "gzip , br");
		assert_string_equal(http_request_header(&p.req, "X-Empty"),
		    "");
		assert_true(p.req.is_keep_alive);
		assert_int_equal(p.req.body_len, 0);
		http_parser_deinit(&p);
	}
}

static void
test_http_parser_post_body_split_across_reads(void **state)
{
	struct http_parser p;
	static const char req[] = "POST /autodiscover/autodiscover.xml "
	    "HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world";

	(void)state;
	assert_int_equal(feed_bytes(&p, req), PARSE_DONE);
	assert_int_equal(p.req.method, HTTP_METHOD_POST);
	assert_int_equal(p.req.body_len, 11);
	assert_memory_equal(p.req.body, "hello world", 11);
	http_parser_deinit(&p);
}

static void
test_http_parser_leaves_the_next_request_in_the_buffer(void **state)
{
	struct http_parser p;
	struct buf in;
	static const char two[] = "POST /a HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";

	(void)state;
	buf_init(&in, 4096);
	buf_append(&in, two, strlen(two));
	http_parser_init(&p, &LIM);
	assert_int_equal(http_parser_feed(&p, &in), PARSE_DONE);
	assert_string_equal(p.req.path, "/a");
	assert_memory_equal(p.req.body, "abc", 3);
	assert_memory_equal(in.data, "GET /b", 6);
	http_parser_next(&p);
	assert_int_equal(http_parser_feed(&p, &in), PARSE_DONE);
	assert_string_equal(p.req.path, "/b");
	assert_false(p.req.is_keep_alive);
	assert_int_equal(in.len, 0);
	http_parser_deinit(&p);
	buf_deinit(&in);
}

static void
test_http_parser_http10_keep_alive_only_when_asked(void **state)
{
	struct http_parser p;

	(void)state;
	assert_int_equal(feed_whole(&p, "GET / HTTP/1.0\r\n\r\n", NULL),
	    PARSE_DONE);
	assert_false(p.req.is_keep_alive);
	assert_null(p.req.host);
	http_parser_deinit(&p);
	assert_int_equal(feed_whole(&p, "GET / HTTP/1.0\r\nConnection: "
	    "Keep-Alive\r\n\r\n", NULL), PARSE_DONE);
	assert_true(p.req.is_keep_alive);
	http_parser_deinit(&p);
}

static void
test_http_parser_refuses_smuggling(void **state)
{
	(void)state;
	/* Both framings, two lengths, lengths that are not plain digits. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 3\r\nContent-Length: 3\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 3,3\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: -1\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 0x10\r\n\r\n"), 400);
	/* Transfer-Encoding alone: not implemented. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), 501);
	/* obs-fold, white space before the colon, bare LF and CR, NUL,
	 * control characters in a value. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n"
	    " c\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length : 0\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\rA: b\r\n\r\n"),
	    400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: \x01"
	    "\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Host: b\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
}

static void
test_http_parser_refuses_bad_request_lines(void **state)
{
	(void)state;
	assert_int_equal(status_of("GET  / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("GET http://x/ HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1 \r\n\r\n"), 400);
	assert_int_equal(status_of("GET /\x7f HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("G(T / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / FTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\n"
	    "Expect: tea\r\n\r\n"), 417);
}

static void
test_http_parser_limits(void **state)
{
	char big[4096];
	size_t n;

	(void)state;
	/* A request line over line_max: 414. */
	n = (size_t)snprintf(big, sizeof(big), "GET /%0600d HTTP/1.1\r\n\r\n",
	    0);
	assert_true(n < sizeof(big));
	assert_int_equal(status_of(big), 414);
	/* A head over head_max: 431. */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nA: %02500d"
	    "\r\n\r\n", 0);
	assert_int_equal(status_of(big), 431);
	/* More fields than headers_max: 431. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n"
	    "B: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n"),
	    431);
	/* A body over body_max: 413, before a byte of it. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 1025\r\n\r\n"), 413);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 99999999999999999999999\r\n\r\n"), 400);
	/* Empty lines before a request: a few are fine, many are not. */
	assert_int_equal(status_of("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n"
	    "Host: x\r\n\r\n"), 400);
}

static void
test_http_parser_empty_line_and_continue(void **state)
{
	struct http_parser p;
	struct buf in;
	static const char head[] = "\r\nPOST / HTTP/1.1\r\nHost: x\r\n"
	    "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n";

	(void)state;
	buf_init(&in, 4096);
	buf_append(&in, head, strlen(head));
	http_parser_init(&p, &LIM);
	assert_false(is_http_parser_started(&p));
	assert_int_equal(http_parser_feed(&p, &in), PARSE_MORE);
	assert_true(is_http_parser_started(&p));
	assert_true(http_parser_take_continue(&p));
	assert_false(http_parser_take_continue(&p));
	buf_append(&in, "ok", 2);
	assert_int_equal(http_parser_feed(&p, &in), PARSE_DONE);
	assert_memory_equal(p.req.body, "ok", 2);
	http_parser_next(&p);
	assert_false(is_http_parser_started(&p));
	http_parser_deinit(&p);
	buf_deinit(&in);
}

static void
test_http_list_token(void **state)
{
	(void)state;
	assert_true(has_http_list_token("gzip", "gzip"));
	assert_true(has_http_list_token("br, GZIP;q=0.5", "gzip"));
	assert_false(has_http_list_token("gzip;q=0", "gzip"));
	assert_false(has_http_list_token("gzip; q=0.000", "gzip"));
	assert_true(has_http_list_token("gzip;q=0.001", "gzip"));
	assert_false(has_http_list_token("xgzip, gzipx", "gzip"));
	assert_false(has_http_list_token(NULL, "gzip"));
	assert_true(has_http_list_token("keep-alive, Close", "close"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_parser_get_with_query_and_headers),
		cmocka_unit_test(
		    test_http_parser_post_body_split_across_reads),
		cmocka_unit_test(
		    test_http_parser_leaves_the_next_request_in_the_buffer),
		cmocka_unit_test(
		    test_http_parser_http10_keep_alive_only_when_asked),
		cmocka_unit_test(test_http_parser_refuses_smuggling),
		cmocka_unit_test(test_http_parser_refuses_bad_request_lines),
		cmocka_unit_test(test_http_parser_limits),
		cmocka_unit_test(test_http_parser_empty_line_and_continue),
		cmocka_unit_test(test_http_list_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
