/*
 * Unit tests for milter/milter_proto: packets split whole or not at all,
 * fed one byte at a time; replies parsed or refused; REPLYCODE cleaned
 * into an SMTP reply; header values from a milter kept inside their
 * field; the end-of-message changes as Sendmail and Postfix number them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "milter/milter_int.h"

static size_t
pk(char *out, char cmd, const char *data, size_t len)
{
	uint32_t n = (uint32_t)len + 1;

	out[0] = (char)(n >> 24);
	out[1] = (char)(n >> 16);
	out[2] = (char)(n >> 8);
	out[3] = (char)n;
	out[4] = cmd;
	memcpy(out + 5, data, len);
	return len + 5;
}

static void
test_milter_packet_split_one_byte_at_a_time(void **state)
{
	char p[64], cmd;
	const char *payload;
	size_t n = pk(p, 'h', "X-A\0v\0", 6), plen, used;

	(void)state;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(milter_packet_split(p, i, &cmd, &payload,
		    &plen, &used), PARSE_MORE);
	assert_int_equal(milter_packet_split(p, n, &cmd, &payload, &plen,
	    &used), PARSE_DONE);
	assert_int_equal(cmd, 'h');
	assert_int_equal(plen, 6);
	assert_int_equal(used, n);
	assert_memory_equal(payload, "X-A\0v\0", 6);
}

static void
test_milter_packet_length_bounds(void **state)
{
	static const unsigned char zero[4] = { 0, 0, 0, 0 };
	static const unsigned char big[4] = { 0, 0x10, 0, 1 };
	static const unsigned char max[4] = { 0, 0x10, 0, 0 };
	uint32_t n;

	(void)state;
	assert_int_equal(milter_packet_length(zero, MILTER_MAX_PACKET, &n), -1);
	assert_int_equal(milter_packet_length(big, MILTER_MAX_PACKET, &n), -1);
	assert_int_equal(milter_packet_length(max, MILTER_MAX_PACKET, &n), 0);
	assert_int_equal(n, MILTER_MAX_PACKET);
}

static void
test_milter_reply_parse_refuses_malformed(void **state)
{
	struct milter_reply r;

	(void)state;
	/* Missing NULs, a bad name, short OPTNEG, an unknown command. */
	assert_int_equal(milter_reply_parse('h', "X-A\0v", 5, &r), -1);
	assert_int_equal(milter_reply_parse('h', "X-A", 3, &r), -1);
	assert_int_equal(milter_reply_parse('h', "X A\0v\0", 6, &r), -1);
	assert_int_equal(milter_reply_parse('h', "\0v\0", 3, &r), -1);
	assert_int_equal(milter_reply_parse('m', "\0\0\0", 3, &r), -1);
	assert_int_equal(milter_reply_parse('O', "\0\0\0\6", 4, &r), -1);
	assert_int_equal(milter_reply_parse('y', "550 no", 6, &r), -1);
	assert_int_equal(milter_reply_parse('Z', "", 0, &r), -1);
	assert_int_equal(milter_reply_parse('m', "\0\0\0\2X-B\0new\0", 12,
	    &r), 0);
	assert_int_equal(r.index, 2);
	assert_string_equal(r.name, "X-B");
	assert_int_equal(r.value_len, 3);
}

static void
test_milter_replycode_cleaned(void **state)
{
	char out[1024];

	(void)state;
	assert_int_equal(milter_replycode_clean("554 5.7.1 Gtube pattern", 23,
	    out, sizeof(out)), 5);
	assert_string_equal(out, "554 5.7.1 Gtube pattern\r\n");
	assert_int_equal(milter_replycode_clean("550-5.7.1 a\r\n550 5.7.1 b",
	    24, out, sizeof(out)), 5);
	assert_string_equal(out, "550-5.7.1 a\r\n550 5.7.1 b\r\n");
	/* Lines without the code get it; LF alone ends a line too. */
	assert_int_equal(milter_replycode_clean("451 x\nmore\n", 11, out,
	    sizeof(out)), 4);
	assert_string_equal(out, "451-x\r\n451 more\r\n");
	assert_int_equal(milter_replycode_clean("421 4.3.2 bye", 13, out,
	    sizeof(out)), 4);
	assert_string_equal(out, "451 4.3.2 bye\r\n");
	assert_int_equal(milter_replycode_clean("450 a\tb", 7, out,
	    sizeof(out)), 4);
	assert_string_equal(out, "450 a?b\r\n");
	assert_int_equal(milter_replycode_clean("250 ok", 6, out,
	    sizeof(out)), -1);
	assert_int_equal(milter_replycode_clean("55", 2, out, sizeof(out)),
	    -1);
	assert_int_equal(milter_replycode_clean("550x", 4, out, sizeof(out)),
	    -1);
}

static void
test_milter_value_kept_inside_its_field(void **state)
{
	char *v;

	(void)state;
	v = milter_value_clean("a\r\n\r\nB: c\nd\re", 13, false);
	assert_string_equal(v, " a\r\n\tB: c\r\n\td\r\n\te");
	free(v);
	v = milter_value_clean("x\0y\n", 4, false);
	assert_string_equal(v, " xy");
	free(v);
	v = milter_value_clean("  lead\n\tfold", 12, true);
	assert_string_equal(v, "  lead\r\n\tfold");
	free(v);
}

static const char hdr[] =
    "Received: from x\r\n\tby y\r\n"
    "X-Spam: one\r\n"
    "Subject: s\r\n"
    "X-Spam: two\r\n";

static char *
formatted(const struct milter_header *h)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 20);
	milter_header_format(h, &b);
	s = strndup(b.data, b.len);
	buf_deinit(&b);
	return s;
}

static void
test_milter_header_changes_numbered_as_sendmail(void **state)
{
	struct milter_header h;
	char *s;

	(void)state;
	assert_int_equal(milter_header_parse(&h, hdr, sizeof(hdr) - 1), 0);
	assert_int_equal(h.n, 4);
	/* CHGHEADER: the n-th of the name, 0 taken as 1; an empty value
	 * deletes; past the last one adds; deleting what is not there does
	 * nothing. */
	assert_int_equal(milter_header_change(&h, 2, "x-spam", "2", 1,
	    false), 0);
	assert_int_equal(milter_header_change(&h, 0, "X-Spam", "", 0, false),
	    0);
	assert_int_equal(milter_header_change(&h, 5, "X-New", "n", 1,
	    false), 0);
	assert_int_equal(milter_header_change(&h, 1, "X-None", "", 0, false),
	    0);
	/* INSHEADER counts every field; past the end appends. */
	assert_int_equal(milter_header_insert(&h, 1, "X-Ins", "i", 1, false),
	    0);
	assert_int_equal(milter_header_insert(&h, 99, "X-End", "e", 1,
	    false), 0);
	assert_int_equal(milter_header_add(&h, "Bad Name", "v", 1, false),
	    -1);
	s = formatted(&h);
	assert_string_equal(s, "Received: from x\r\n\tby y\r\n"
	    "X-Ins: i\r\nSubject: s\r\nX-Spam: 2\r\nX-New: n\r\n"
	    "X-End: e\r\n\r\n");
	free(s);
	assert_true(h.is_changed);
	milter_header_deinit(&h);
}

static void
test_milter_header_bounds(void **state)
{
	struct milter_header h;
	int rc = 0;
	size_t i;

	(void)state;
	assert_int_equal(milter_header_parse(&h, hdr, sizeof(hdr) - 1), 0);
	for (i = 0; i < MILTER_MAX_FIELDS && rc == 0; i++)
		rc = milter_header_add(&h, "X-Many", "v", 1, false);
	assert_int_equal(rc, -1);
	assert_int_equal(h.n, MILTER_MAX_FIELDS);
	milter_header_deinit(&h);
}

/* Lines without a colon go with the field before, as they were; many of
 * them (appended in place, not copied per line) still parse whole. */
static void
test_milter_header_lines_without_colon(void **state)
{
	static const char hdr[] = "A: b\r\nx\r\ny z\r\nC: d\r\n";
	struct milter_header h;
	size_t n = 200000, len = 6 + 3 * n;
	char *big = malloc(len + 1);

	(void)state;
	assert_int_equal(milter_header_parse(&h, hdr, sizeof(hdr) - 1), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.fields[0].value, " b\r\nx\r\ny z");
	assert_string_equal(h.fields[1].name, "C");
	assert_string_equal(h.fields[1].value, " d");
	milter_header_deinit(&h);

	memcpy(big, "A: b\r\n", 6);
	for (size_t i = 0; i < n; i++)
		memcpy(big + 6 + 3 * i, "x\r\n", 3);
	big[len] = '\0';
	assert_int_equal(milter_header_parse(&h, big, len), 0);
	assert_int_equal(h.n, 1);
	assert_int_equal(strlen(h.fields[0].value), 2 + 3 * n);
	assert_memory_equal(h.fields[0].value + 2 + 3 * (n - 1), "\r\nx", 3);
	milter_header_deinit(&h);
	free(big);
}

static void
test_milter_body_line_ends(void **state)
{
	struct buf b;
	bool is_cr = false;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(milter_body_clean(&b, "a\nb\r", 4, &is_cr), 0);
	assert_int_equal(milter_body_clean(&b, "\nc\rd", 4, &is_cr), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "a\r\nb\r\nc\r\nd", 10);
	buf_deinit(&b);
	buf_init(&b, 5);
	is_cr = false;
	assert_int_equal(milter_body_clean(&b, "\n\n\n", 3, &is_cr), -1);
	buf_deinit(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_milter_packet_split_one_byte_at_a_time),
		cmocka_unit_test(test_milter_packet_length_bounds),
		cmocka_unit_test(test_milter_reply_parse_refuses_malformed),
		cmocka_unit_test(test_milter_replycode_cleaned),
		cmocka_unit_test(test_milter_value_kept_inside_its_field),
		cmocka_unit_test(
		    test_milter_header_changes_numbered_as_sendmail),
		cmocka_unit_test(test_milter_header_bounds),
		cmocka_unit_test(test_milter_header_lines_without_colon),
		cmocka_unit_test(test_milter_body_line_ends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
