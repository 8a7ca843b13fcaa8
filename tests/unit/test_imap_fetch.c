/*
 * Unit tests for the pure helpers of FETCH and STORE (imap_fetch_filter.c):
 * HEADER.FIELDS[.NOT] subsets, base64 and quoted-printable decoding for
 * BINARY, fed whole, split at every byte and one byte at a time; the MIME
 * field lookup, the blank line that ends a header, and sequence sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_int.h"
#include "lib/util.h"

/* Runs the filter over in, cut at the given points, and returns the
 * output (NUL-terminated; caller frees), its length in *n_out. */
static char *
filter_cut(enum imap_filter_kind kind, char *const *fields, size_t nfields,
    const char *in, size_t len, const size_t *cuts, size_t ncuts,
    size_t *n_out)
{
	struct imap_filter f;
	char *out = xmalloc(len + IMAP_FILTER_SLACK * (ncuts + 2) + 1);
	size_t o = 0, at = 0;

	imap_fetch_filter_init(&f, kind, fields, nfields);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		size_t n = imap_fetch_filter_run(&f, in + at, end - at,
		    out + o);

		assert_true(n <= end - at + IMAP_FILTER_SLACK);
		o += n;
		at = end;
	}
	o += imap_fetch_filter_end(&f, out + o);
	out[o] = '\0';
	*n_out = o;
	return out;
}

/* Checks that in gives want whole, split in two at every byte, and fed
 * one byte at a time. */
static void
check_filter_n(enum imap_filter_kind kind, char *const *fields,
    size_t nfields, const char *in, size_t len, const char *want,
    size_t want_len)
{
	size_t n, *cuts;
	char *out;

	out = filter_cut(kind, fields, nfields, in, len, NULL, 0, &n);
	assert_int_equal(n, want_len);
	assert_memory_equal(out, want, want_len);
	free(out);
	for (size_t cut = 0; cut <= len; cut++) {
		out = filter_cut(kind, fields, nfields, in, len, &cut, 1, &n);
		assert_int_equal(n, want_len);
		assert_memory_equal(out, want, want_len);
		free(out);
	}
	cuts = xmalloc((len + 1) * sizeof(*cuts));
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	out = filter_cut(kind, fields, nfields, in, len, cuts, len, &n);
	assert_int_equal(n, want_len);
	assert_memory_equal(out, want, want_len);
	free(out);
	free(cuts);
}

static void
check_filter(enum imap_filter_kind kind, char *const *fields,
    size_t nfields, const char *in, const char *want)
{
	check_filter_n(kind, fields, nfields, in, strlen(in), want,
	    strlen(want));
}

static const char HEADER[] =
    "From: Alice <a@example.com>\r\n"
    "To: Bob <b@example.com>,\r\n"
    "  Carol <c@example.com>\r\n"
    "subject: Hello\r\n"
    "X-Long:\r\n"
    "\tfolded\r\n"
    "\r\n";

static void
test_imap_fetch_fields_keeps_listed_with_continuations(void **state)
{
	char *fields[] = { "TO", "Subject" };

	(void)state;
	check_filter(IMAP_FILTER_FIELDS, fields, 2, HEADER,
	    "To: Bob <b@example.com>,\r\n"
	    "  Carol <c@example.com>\r\n"
	    "subject: Hello\r\n"
	    "\r\n");
}

static void
test_imap_fetch_fields_not_drops_listed(void **state)
{
	char *fields[] = { "to", "x-long" };

	(void)state;
	check_filter(IMAP_FILTER_FIELDS_NOT, fields, 2, HEADER,
	    "From: Alice <a@example.com>\r\n"
	    "subject: Hello\r\n"
	    "\r\n");
}

static void
test_imap_fetch_fields_none_matching_is_blank_line(void **state)
{
	char *fields[] = { "Date" };

	(void)state;
	check_filter(IMAP_FILTER_FIELDS, fields, 1, HEADER, "\r\n");
	/* A header without a blank line (no body): nothing at all. */
	check_filter(IMAP_FILTER_FIELDS, fields, 1, "From: a\r\n", "");
}

static void
test_imap_fetch_fields_name_needs_exact_match(void **state)
{
	char *fields[] = { "Subj", "From" };

	(void)state;
	/* A prefix is no match; white space before the colon is no part
	 * of the name (RFC 5322 §4.5.3). */
	check_filter(IMAP_FILTER_FIELDS, fields, 2,
	    "Subject: x\r\nFrom : y\r\nFromage: z\r\n\r\n",
	    "From : y\r\n\r\n");
}

static void
test_imap_fetch_fields_lf_only_and_junk_lines(void **state)
{
	char *fields[] = { "a" };

	(void)state;
	check_filter(IMAP_FILTER_FIELDS, fields, 1,
	    "A: 1\nno colon here\nB: 2\n\n", "A: 1\n\n");
	check_filter(IMAP_FILTER_FIELDS_NOT, fields, 1,
	    "A: 1\nno colon here\nB: 2\n\n", "no colon here\nB: 2\n\n");
	/* An unterminated last line is kept by .NOT. */
	check_filter(IMAP_FILTER_FIELDS_NOT, fields, 1, "A: 1\r\nB", "B");
}

static void
test_imap_fetch_fields_long_name_does_not_overflow(void **state)
{
	char *fields[] = { "x" };
	size_t len = IMAP_FILTER_NAME_MAX * 3;
	char *in = xmalloc(len + 16);

	(void)state;
	memset(in, 'N', len);
	memcpy(in + len, ": v\r\n\r\n", 8);
	check_filter(IMAP_FILTER_FIELDS, fields, 1, in, "\r\n");
	check_filter(IMAP_FILTER_FIELDS_NOT, fields, 1, in, in);
	free(in);
}

static void
test_imap_fetch_base64_decodes_across_lines(void **state)
{
	(void)state;
	check_filter(IMAP_FILTER_BASE64, NULL, 0,
	    "SGVs\r\nbG8s\r\nIHdv\r\ncmxk\r\nIQ==\r\n", "Hello, world!");
	check_filter(IMAP_FILTER_BASE64, NULL, 0, "YQ==", "a");
	check_filter(IMAP_FILTER_BASE64, NULL, 0, "YWI=", "ab");
	/* Missing padding at the end still gives the bytes. */
	check_filter(IMAP_FILTER_BASE64, NULL, 0, "YWI", "ab");
	check_filter(IMAP_FILTER_BASE64, NULL, 0, "", "");
	/* Characters outside the alphabet are ignored (RFC 2045 §6.8). */
	check_filter(IMAP_FILTER_BASE64, NULL, 0, "Y W\t!J j", "abc");
}

static void
test_imap_fetch_base64_keeps_nul_bytes(void **state)
{
	const char want[] = { 0, 1, 2, (char)0xff, 0 };

	(void)state;
	check_filter_n(IMAP_FILTER_BASE64, NULL, 0, "AAEC/wA=", 8, want,
	    sizeof(want));
}

static void
test_imap_fetch_qp_decodes_rfc2045(void **state)
{
	(void)state;
	check_filter(IMAP_FILTER_QP, NULL, 0,
	    "caf=C3=A9 =3D x\r\n", "caf\xc3\xa9 = x\r\n");
	/* Soft line breaks, with CRLF, LF and trailing white space. */
	check_filter(IMAP_FILTER_QP, NULL, 0,
	    "soft=\r\nbreak=\nhere= \t\r\nend", "softbreakhereend");
	/* Trailing white space is not data (rule 3); inner is. */
	check_filter(IMAP_FILTER_QP, NULL, 0, "a b  \r\nc\t\nd  ",
	    "a b\r\nc\nd");
	/* Lowercase hex is read; bad sequences stand as they are. */
	check_filter(IMAP_FILTER_QP, NULL, 0, "=3d=ZZ=4", "==ZZ=4");
	check_filter(IMAP_FILTER_QP, NULL, 0, "x=", "x=");
}

static void
test_imap_fetch_qp_decodes_nul(void **state)
{
	const char want[] = { 'a', 0, 'b' };

	(void)state;
	check_filter_n(IMAP_FILTER_QP, NULL, 0, "a=00b", 5, want, 3);
}

static void
test_imap_fetch_qp_long_white_space_run(void **state)
{
	char in[1200], want[1200];

	(void)state;
	/* A run longer than the decoder holds back: inner white space
	 * still arrives whole. */
	memset(in, ' ', 1000);
	strcpy(in + 1000, "x");
	memcpy(want, in, 1002);
	check_filter(IMAP_FILTER_QP, NULL, 0, in, want);
}

static void
test_imap_fetch_copy_is_identity(void **state)
{
	const char in[] = { 'a', 0, '\r', '\n', 'b' };

	(void)state;
	check_filter_n(IMAP_FILTER_COPY, NULL, 0, in, sizeof(in), in,
	    sizeof(in));
}

static void
test_imap_fetch_cte_names(void **state)
{
	enum imap_filter_kind k;

	(void)state;
	assert_int_equal(imap_fetch_filter_cte("", &k), 0);
	assert_int_equal(k, IMAP_FILTER_COPY);
	assert_int_equal(imap_fetch_filter_cte("8bit", &k), 0);
	assert_int_equal(k, IMAP_FILTER_COPY);
	assert_int_equal(imap_fetch_filter_cte("binary", &k), 0);
	assert_int_equal(imap_fetch_filter_cte("base64", &k), 0);
	assert_int_equal(k, IMAP_FILTER_BASE64);
	assert_int_equal(imap_fetch_filter_cte("quoted-printable", &k), 0);
	assert_int_equal(k, IMAP_FILTER_QP);
	assert_int_equal(imap_fetch_filter_cte("x-uuencode", &k), -1);
}

static void
test_imap_fetch_header_value_reads_first_token(void **state)
{
	const char h[] =
	    "Content-Type: Message/RFC822; name=x\r\n"
	    "Content-Transfer-Encoding:\r\n"
	    "  (a comment (nested)) BASE64 \r\n"
	    "X: y\r\n"
	    "\r\n"
	    "Content-Language: en\r\n";
	char out[32];

	(void)state;
	assert_true(imap_fetch_header_value(h, strlen(h), "content-type",
	    out, sizeof(out)));
	assert_string_equal(out, "message/rfc822");
	assert_true(imap_fetch_header_value(h, strlen(h),
	    "Content-Transfer-Encoding", out, sizeof(out)));
	assert_string_equal(out, "base64");
	/* Past the blank line is the body, not the header. */
	assert_false(imap_fetch_header_value(h, strlen(h),
	    "Content-Language", out, sizeof(out)));
	assert_false(imap_fetch_header_value(h, strlen(h), "Content",
	    out, sizeof(out)));
	/* Truncated to the room given. */
	assert_true(imap_fetch_header_value(h, strlen(h), "content-type",
	    out, 5));
	assert_string_equal(out, "mess");
	/* A field with an empty value. */
	assert_true(imap_fetch_header_value("A:\r\n\r\n", 6, "a", out,
	    sizeof(out)));
	assert_string_equal(out, "");
}

static void
test_imap_fetch_header_end_across_chunks(void **state)
{
	const char *h = "A: 1\r\n b\r\n\r\nbody\r\n\r\n";
	size_t len = strlen(h);

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		int st = 0;
		size_t at = imap_fetch_header_end(h, cut, &st);

		if (at == SIZE_MAX) {
			at = imap_fetch_header_end(h + cut, len - cut, &st);
			assert_true(at != SIZE_MAX);
			at += cut;
		}
		assert_int_equal(at, 12);
	}
	{
		int st = 0;

		assert_int_equal(imap_fetch_header_end("\r\nx", 3, &st), 2);
		st = 0;
		assert_int_equal(imap_fetch_header_end("a\n\nx", 4, &st), 3);
		st = 0;
		assert_int_equal(imap_fetch_header_end("a: b\r\n", 6, &st),
		    SIZE_MAX);
	}
}

static void
test_imap_fetch_set_format_merges_runs(void **state)
{
	const uint32_t v[] = { 1, 2, 3, 5, 7, 8, 4294967295u };
	char *s;

	(void)state;
	s = imap_fetch_set_format(v, ARRAY_LEN(v));
	assert_string_equal(s, "1:3,5,7:8,4294967295");
	free(s);
	s = imap_fetch_set_format(v, 0);
	assert_string_equal(s, "");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_imap_fetch_fields_keeps_listed_with_continuations),
		cmocka_unit_test(test_imap_fetch_fields_not_drops_listed),
		cmocka_unit_test(
		    test_imap_fetch_fields_none_matching_is_blank_line),
		cmocka_unit_test(test_imap_fetch_fields_name_needs_exact_match),
		cmocka_unit_test(test_imap_fetch_fields_lf_only_and_junk_lines),
		cmocka_unit_test(
		    test_imap_fetch_fields_long_name_does_not_overflow),
		cmocka_unit_test(test_imap_fetch_base64_decodes_across_lines),
		cmocka_unit_test(test_imap_fetch_base64_keeps_nul_bytes),
		cmocka_unit_test(test_imap_fetch_qp_decodes_rfc2045),
		cmocka_unit_test(test_imap_fetch_qp_decodes_nul),
		cmocka_unit_test(test_imap_fetch_qp_long_white_space_run),
		cmocka_unit_test(test_imap_fetch_copy_is_identity),
		cmocka_unit_test(test_imap_fetch_cte_names),
		cmocka_unit_test(
		    test_imap_fetch_header_value_reads_first_token),
		cmocka_unit_test(test_imap_fetch_header_end_across_chunks),
		cmocka_unit_test(test_imap_fetch_set_format_merges_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
