/*
 * Unit tests for src/archive: line ends, the mbox reader (fed whole and one
 * byte at a time, with the same result), separators, quoting, hidden
 * headers, CRLF files, long lines and bad input; the mbox writer read back
 * by the reader; Maildir file names, dovecot-keywords and folder names;
 * the duplicate key and multiset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archive/archive.h"
#include "lib/util.h"

/* ---- A reader that records what it is told ---------------------------- */

struct rec {
	char *out;		/* "<BEGIN line date>" body "<END flags kw>" */
	size_t len, cap;
};

static void
rec_put(struct rec *r, const char *p, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->out = xrealloc(r->out, r->cap);
	}
	memcpy(r->out + r->len, p, n);
	r->len += n;
	r->out[r->len] = '\0';
}

static int
rec_begin(void *arg, const struct archive_mbox_from *f)
{
	char tmp[96];

	snprintf(tmp, sizeof(tmp), "<BEGIN %llu %llu %lld>",
	    (unsigned long long)f->line, (unsigned long long)f->offset,
	    (long long)f->date);
	rec_put(arg, tmp, strlen(tmp));
	return 0;
}

static int
rec_data(void *arg, const char *p, size_t n)
{
	rec_put(arg, p, n);
	return 0;
}

static int
rec_end(void *arg, const struct archive_mbox_msg *m)
{
	char tmp[ARCHIVE_KEYWORDS_MAX + 64];

	snprintf(tmp, sizeof(tmp), "<END %u %s%s>", m->flags,
	    m->keywords ? m->keywords : "-", m->is_pseudo ? " pseudo" : "");
	rec_put(arg, tmp, strlen(tmp));
	return 0;
}

static const struct archive_mbox_cb rec_cb = {
	rec_begin, rec_data, rec_end,
};

/* Reads input in pieces of step bytes (0: at once). Returns the record
 * (caller frees) or NULL on PARSE_ERROR, with the error's line. */
static char *
read_mbox(enum archive_mbox_kind kind, const char *in, size_t n, size_t step,
    uint64_t *err_line)
{
	struct rec r = { 0 };
	struct archive_mbox *m = archive_mbox_new(kind, &rec_cb, &r);
	enum parse_rc rc = PARSE_MORE;
	uint64_t off;

	rec_put(&r, "", 0);
	if (step == 0)
		step = n ? n : 1;
	for (size_t i = 0; i < n && rc == PARSE_MORE; i += step)
		rc = archive_mbox_feed(m, in + i, n - i < step ? n - i : step);
	if (rc == PARSE_MORE)
		rc = archive_mbox_finish(m);
	if (rc == PARSE_ERROR) {
		archive_mbox_error(m, err_line, &off);
		free(r.out);
		r.out = NULL;
	}
	archive_mbox_free(&m);
	return r.out;
}

/* Whole, one byte at a time and in 7-byte pieces agree. */
static char *
read_all_ways(enum archive_mbox_kind kind, const char *in)
{
	uint64_t line;
	char *whole = read_mbox(kind, in, strlen(in), 0, &line);
	char *bytes = read_mbox(kind, in, strlen(in), 1, &line);
	char *sevens = read_mbox(kind, in, strlen(in), 7, &line);

	assert_non_null(whole);
	assert_non_null(bytes);
	assert_non_null(sevens);
	assert_string_equal(whole, bytes);
	assert_string_equal(whole, sevens);
	free(bytes);
	free(sevens);
	return whole;
}

/* 2026-12-07 01:57:18 UTC and 2026-12-08 01:00:00 UTC. */
#define T1 "1796608638"
#define T2 "1796691600"

static void
test_archive_mbox_splits_on_from_lines_only(void **state)
{
	const char *in =
	    "From MAILER-DAEMON Mon Dec  7 01:57:18 2026\n"
	    "Subject: one\n"
	    "\n"
	    "From the desk of nobody: not a separator (no date)\n"
	    "From bob Mon Dec  7 01:57:18 2026 follows no blank line\n"
	    "\n"
	    ">From quoted\n"
	    ">>From twice\n"
	    ">Fromage\n"
	    "\n"
	    "\n"
	    "From bob@example.test Tue Dec  8 01:00:00 2026\n"
	    "Subject: two\n"
	    "\n"
	    "end\n"
	    "\n";
	char *got;

	(void)state;
	got = read_all_ways(ARCHIVE_MBOXRD, in);
	assert_string_equal(got,
	    "<BEGIN 1 0 " T1 ">Subject: one\n\n"
	    "From the desk of nobody: not a separator (no date)\n"
	    "From bob Mon Dec  7 01:57:18 2026 follows no blank line\n"
	    "\nFrom quoted\n>From twice\n>Fromage\n\n<END 0 ->"
	    "<BEGIN 12 203 " T2 ">Subject: two\n\nend\n<END 0 ->");
	free(got);
	/* mboxo takes a '>' off ">From " only. */
	got = read_all_ways(ARCHIVE_MBOXO, in);
	assert_non_null(strstr(got, "\nFrom quoted\n>>From twice\n"));
	free(got);
}

static void
test_archive_mbox_hidden_headers_are_flags(void **state)
{
	const char *in =
	    "From x Mon Dec  7 01:57:18 2026\n"
	    "X-IMAP: 1234 0000000002\n"
	    "Subject: pseudo\n"
	    "\n"
	    "folder data\n"
	    "\n"
	    "From x Mon Dec  7 01:57:18 2026\n"
	    "From: a@b\n"
	    "Status: RO\n"
	    "X-Status: AFTD\n"
	    "X-Keywords: $Label1 work,(bad)\n"
	    "\tlater\n"
	    "X-UID: 7\n"
	    "Content-Length: 5\n"
	    "Subject: s\n"
	    "\n"
	    "body\n";
	char *got;

	(void)state;
	got = read_all_ways(ARCHIVE_MBOXRD, in);
	assert_string_equal(got,
	    "<BEGIN 1 0 " T1 ">Subject: pseudo\n\nfolder data\n<END 0 - "
	    "pseudo><BEGIN 7 86 " T1 ">From: a@b\nSubject: s\n\nbody\n"
	    "<END 31 $Label1 work later>");
	free(got);
}

static void
test_archive_mbox_crlf_and_8bit(void **state)
{
	const char *in =
	    "From x Mon Dec  7 01:57:18 2026\r\n"
	    "Subject: caf\xc3\xa9 \xff\r\n"
	    "Status: R\r\n"
	    "\r\n"
	    ">From here\r\n"
	    "\r\n"
	    "From y Tue Dec  8 01:00:00 2026 +0100\r\n"
	    "\r\n"
	    "b\r\n";
	char *got;

	(void)state;
	got = read_all_ways(ARCHIVE_MBOXRD, in);
	assert_string_equal(got,
	    "<BEGIN 1 0 " T1 ">Subject: caf\xc3\xa9 \xff\r\n\r\nFrom here\r\n"
	    "<END 1 -><BEGIN 7 78 1796688000>\r\nb\r\n<END 0 ->");
	free(got);
}

static void
test_archive_mbox_long_lines_pass_in_pieces(void **state)
{
	size_t n = 3 * ARCHIVE_MBOX_LINE_MAX;
	char *in = xmalloc(2 * n + 200), *got, *want;
	size_t len;

	(void)state;
	len = (size_t)sprintf(in, "From x Mon Dec  7 01:57:18 2026\n"
	    "X-Keywords: ");
	memset(in + len, 'k', n);
	len += n;
	len += (size_t)sprintf(in + len, "\nSubject: s\n\n>From ");
	memset(in + len, 'b', n);
	len += n;
	in[len++] = '\n';
	in[len] = '\0';
	got = read_all_ways(ARCHIVE_MBOXRD, in);
	want = xmalloc(n + 200);
	len = (size_t)sprintf(want, "<BEGIN 1 0 " T1 ">Subject: s\n\nFrom ");
	memset(want + len, 'b', n);
	len += n;
	strcpy(want + len, "\n<END 0 ->");
	assert_string_equal(got, want);
	free(got);
	free(want);
	free(in);
}

static void
test_archive_mbox_refuses_what_is_not_mbox(void **state)
{
	uint64_t line = 0;
	char *got;

	(void)state;
	got = read_mbox(ARCHIVE_MBOXRD, "\n\nSubject: no From line\n", 24, 1,
	    &line);
	assert_null(got);
	assert_int_equal(line, 3);
	/* A line longer than the reader holds, before any message. */
	char *big = xmalloc(2 * ARCHIVE_MBOX_LINE_MAX);

	memset(big, 'x', 2 * ARCHIVE_MBOX_LINE_MAX);
	got = read_mbox(ARCHIVE_MBOXRD, big, 2 * ARCHIVE_MBOX_LINE_MAX, 1000,
	    &line);
	assert_null(got);
	assert_int_equal(line, 1);
	free(big);
	/* Empty input: no message, no error. */
	got = read_mbox(ARCHIVE_MBOXRD, "", 0, 1, &line);
	assert_string_equal(got, "");
	free(got);
}

static void
test_archive_mbox_from_dates(void **state)
{
	int64_t t;

	(void)state;
	assert_true(is_archive_mbox_from("From a Mon Dec  7 01:57:18 2026",
	    31, &t));
	assert_int_equal(t, 1796608638);
	assert_true(is_archive_mbox_from("From a Mon Dec 7 01:57 2026", 27,
	    &t));
	assert_int_equal(t, 1796608620);
	assert_true(is_archive_mbox_from("From a Mon Dec  7 01:57:18 CET "
	    "2026", 35, &t));
	assert_true(is_archive_mbox_from("From  Mon Dec  7 01:57:18 2026 "
	    "-0130", 36, &t));
	assert_int_equal(t, 1796608638 + 5400);
	assert_false(is_archive_mbox_from("From a Mon Dec 32 01:57:18 2026",
	    31, &t));
	assert_false(is_archive_mbox_from("From here on", 12, &t));
	assert_false(is_archive_mbox_from("Fro", 3, &t));
}

/* ---- The writer, read back -------------------------------------------- */

static int
buf_write(void *arg, const char *p, size_t n)
{
	rec_put(arg, p, n);
	return 0;
}

static char *
write_mbox(const char *msg, uint32_t flags, const char *kw, size_t step)
{
	struct rec r = { 0 };
	struct archive_mbox_out *o;
	char from[ARCHIVE_MBOX_FROM_MAX];
	size_t n = strlen(msg);

	rec_put(&r, from, archive_mbox_from_format(from, sizeof(from),
	    "a@b", 1796608638));
	o = archive_mbox_out_new(flags, kw, buf_write, &r);
	for (size_t i = 0; i < n; i += step)
		assert_int_equal(archive_mbox_out_feed(o, msg + i,
		    n - i < step ? n - i : step), 0);
	assert_int_equal(archive_mbox_out_finish(o), 0);
	archive_mbox_out_free(&o);
	return r.out;
}

static void
test_archive_mbox_writer_round_trip(void **state)
{
	const char *msg = "Subject: s\r\n\r\nFrom me\r\n>From you\r\n"
	    ">>From them\r\nFrom\r\n>F\r\n\r\n";
	char *a, *b, *got;

	(void)state;
	a = write_mbox(msg, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
	    "$Label1 x", 1000);
	b = write_mbox(msg, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
	    "$Label1 x", 1);
	assert_string_equal(a, b);
	assert_string_equal(a, "From a@b Mon Dec  7 01:57:18 2026\n"
	    "Subject: s\nStatus: RO\nX-Status: F\nX-Keywords: $Label1 x\n\n"
	    ">From me\n>>From you\n>>>From them\nFrom\n>F\n\n\n");
	got = read_all_ways(ARCHIVE_MBOXRD, a);
	assert_string_equal(got, "<BEGIN 1 0 " T1 ">Subject: s\n\nFrom me\n"
	    ">From you\n>>From them\nFrom\n>F\n\n<END 5 $Label1 x>");
	free(got);
	free(a);
	free(b);
	/* All header, no line end at the end. */
	a = write_mbox("Subject: x", 0, NULL, 3);
	assert_string_equal(a, "From a@b Mon Dec  7 01:57:18 2026\n"
	    "Subject: x\nStatus: O\n\n\n");
	free(a);
}

/* ---- Line ends -------------------------------------------------------- */

static void
test_archive_eol_both_ways(void **state)
{
	struct archive_eol e;
	char out[64];
	size_t n;

	(void)state;
	archive_eol_init(&e, false);
	n = archive_eol_feed(&e, "a\nb\r", 4, out);
	n += archive_eol_feed(&e, "\nc\rd\r", 5, out + n);
	n += archive_eol_finish(&e, out + n);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "a\r\nb\r\nc\r\nd\r\n", 12);
	archive_eol_init(&e, true);
	n = archive_eol_feed(&e, "a\r\nb\r", 5, out);
	n += archive_eol_feed(&e, "\nc\rd\r", 5, out + n);
	n += archive_eol_finish(&e, out + n);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "a\nb\nc\rd\r", 8);
}

/* ---- Maildir ---------------------------------------------------------- */

static void
test_archive_maildir_names(void **state)
{
	struct archive_maildir_info info;
	char name[ARCHIVE_MAILDIR_NAME_MAX];

	(void)state;
	archive_maildir_name_parse("1796608638.M1P2.host,S=10:2,TSRPFDzba",
	    &info);
	assert_int_equal(info.time, 1796608638);
	assert_int_equal(info.flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED |
	    STORE_FLAG_FLAGGED | STORE_FLAG_DELETED | STORE_FLAG_DRAFT);
	assert_true(info.is_forwarded);
	assert_int_equal(info.keywords, (1u << 25) | 3);
	assert_true(archive_maildir_name_format(name, sizeof(name),
	    1796608638, "U1V2", "host", 10, 12, &info) > 0);
	assert_string_equal(name,
	    "1796608638.U1V2.host,S=10,W=12:2,DFPRSTabz");
	archive_maildir_name_parse("no-info-here", &info);
	assert_int_equal(info.time, -1);
	assert_int_equal(info.flags, 0);
	assert_int_equal(archive_maildir_name_format(name, 10, 1, "u", "h",
	    1, 1, &info), 0);
}

static void
test_archive_maildir_keywords_file(void **state)
{
	struct archive_maildir_keywords k;
	const char *text = "0 $Label1\n1 work\nx bad\n30 big\n1 again\n"
	    "2 (paren\n\n3 last";
	size_t bad_line;

	(void)state;
	assert_int_equal(archive_maildir_keywords_parse(&k, text,
	    strlen(text), &bad_line), 4);
	assert_int_equal(bad_line, 3);
	assert_string_equal(k.names[0], "$Label1");
	assert_string_equal(k.names[1], "work");
	assert_null(k.names[2]);
	assert_string_equal(k.names[3], "last");
	assert_int_equal(archive_maildir_keywords_letter(&k, "WORK", 4), 1);
	assert_int_equal(archive_maildir_keywords_letter(&k, "new", 3), 2);
	for (int i = 0; i < 22; i++) {
		char kw[8];

		snprintf(kw, sizeof(kw), "k%d", i);
		assert_true(archive_maildir_keywords_letter(&k, kw,
		    strlen(kw)) >= 0);
	}
	assert_int_equal(archive_maildir_keywords_letter(&k, "one-more", 8),
	    -1);
	archive_maildir_keywords_deinit(&k);
}

static void
folder_round_trip(const char *name, const char *dir)
{
	char *enc = archive_folder_encode(name), *dec;

	assert_non_null(enc);
	assert_string_equal(enc, dir);
	dec = archive_folder_decode(dir);
	assert_non_null(dec);
	assert_string_equal(dec, name);
	free(enc);
	free(dec);
}

static void
test_archive_folder_names(void **state)
{
	char *s;

	(void)state;
	folder_round_trip("Archive", ".Archive");
	folder_round_trip("A/B", ".A.B");
	folder_round_trip("INBOX/x", ".INBOX.x");
	folder_round_trip("a.b/c\\d", ".a\\2eb.c\\5cd");
	folder_round_trip("~home", ".\\7ehome");
	folder_round_trip("B\xc3\xa4r & Co", ".B&AOQ-r &- Co");
	/* Names stored before the path rule stay inside the export. */
	folder_round_trip("../../etc", ".\\2e\\2e.\\2e\\2e.etc");
	folder_round_trip("..", ".\\2e\\2e");
	/* No length limit of its own: mkdir says ENAMETOOLONG. */
	{
		char name[301], dir[302];

		memset(name, 'x', 300);
		name[300] = '\0';
		dir[0] = '.';
		memcpy(dir + 1, name, 301);
		folder_round_trip(name, dir);
	}
	s = archive_folder_encode("INBOX");
	assert_string_equal(s, "");
	free(s);
	assert_null(archive_folder_encode("/"));
	assert_null(archive_folder_encode("a//b"));
	assert_null(archive_folder_encode("/etc"));
	assert_null(archive_folder_encode("a/"));
	assert_null(archive_folder_encode(""));
	assert_null(archive_folder_decode("."));
	assert_null(archive_folder_decode(".."));
	assert_null(archive_folder_decode("..a"));
	assert_null(archive_folder_decode(".a."));
	assert_null(archive_folder_decode(".a\\2fb"));
	assert_null(archive_folder_decode(".a\\0ab"));
	assert_null(archive_folder_decode(".a\\2"));
	assert_null(archive_folder_decode(".a\\zz"));
	assert_null(archive_folder_decode(".&Jjo"));
	assert_null(archive_folder_decode("plain"));
}

/* ---- Duplicates ------------------------------------------------------- */

static void
key_of(const char *msg, struct archive_key *key_out)
{
	archive_key_of(msg, strlen(msg), key_out);
}

static void
test_archive_dedupe_keys(void **state)
{
	struct archive_key a, b, c;
	struct archive_dedupe *d;

	(void)state;
	/* Line ends do not count; every other header does, the Message-ID
	 * included, and so does the body. */
	key_of("Message-ID: <1@x>\r\nSubject: a\r\n\r\nbody\r\n", &a);
	key_of("Message-ID: <1@x>\nSubject: a\n\nbody\n", &b);
	assert_memory_equal(&a, &b, sizeof(a));
	key_of("Message-ID: <1@x>\r\nSubject: b\r\n\r\nbody\r\n", &c);
	assert_memory_not_equal(&a, &c, sizeof(a));
	key_of("Message-ID: <2@x>\r\nSubject: a\r\n\r\nbody\r\n", &c);
	assert_memory_not_equal(&a, &c, sizeof(a));
	key_of("Message-ID: <1@x>\r\nSubject: a\r\n\r\nbodY\r\n", &c);
	assert_memory_not_equal(&a, &c, sizeof(a));
	/* The review's case: a placeholder Message-ID and the same short
	 * body are not the same message when the header differs. */
	key_of("Subject: code 1111\r\nMessage-ID: <>\r\n\r\n-\r\n", &a);
	key_of("From: bank@y\r\nSubject: your statement\r\n"
	    "Message-ID: <>\r\n\r\n-\r\n", &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	key_of("Subject: a\r\n\r\nok\r\n", &a);
	key_of("Subject: b\r\n\r\nok\r\n", &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	key_of("Subject: a\n\nok\n", &c);
	assert_memory_equal(&a, &c, sizeof(a));

	/* A multiset: two copies in the mailbox match two in the source. */
	d = archive_dedupe_new();
	archive_dedupe_add(d, &a);
	archive_dedupe_add(d, &a);
	for (int i = 0; i < 1000; i++) {
		struct archive_key k;
		char msg[32];

		snprintf(msg, sizeof(msg), "Subject: %d\n\n", i);
		archive_key_of(msg, strlen(msg), &k);
		archive_dedupe_add(d, &k);
	}
	assert_true(archive_dedupe_take(d, &a));
	assert_true(archive_dedupe_take(d, &a));
	assert_false(archive_dedupe_take(d, &a));
	assert_false(archive_dedupe_take(d, &b));
	{
		struct archive_key k;

		key_of("Subject: 999\n\n", &k);
		assert_true(archive_dedupe_take(d, &k));
	}
	archive_dedupe_free(&d);
}

/* The fields an mbox import hides and export writes back do not count,
 * anywhere in the header and in any case, continuation lines included;
 * the same text in the body or as another field's value does. */
static void
test_archive_dedupe_key_ignores_mbox_hidden_fields(void **state)
{
	struct archive_key a, b;

	(void)state;
	key_of("From: a@x\r\nSubject: s\r\n\r\nbody\r\n", &a);
	key_of("Status: RO\nFrom: a@x\nX-Status: AF\nSubject: s\n"
	    "X-Keywords: one,\n two\nx-uid: 7\nContent-Length: 5\n"
	    "X-IMAP: 1 2\nX-IMAPbase: 1 2\n\nbody\n", &b);
	assert_memory_equal(&a, &b, sizeof(a));
	key_of("From: a@x\r\nSubject: s\r\n\r\nbody\r\nStatus: RO\r\n",
	    &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	key_of("From: a@x\r\nSubject: s\r\nX-Other: y\r\n\r\nbody\r\n",
	    &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	key_of("From: a@x\r\nSubject: s\r\nStatusX: RO\r\n\r\nbody\r\n",
	    &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* A long field name is hashed whole. */
	key_of("X-A-Very-Long-Field-Name: 1\r\n\r\nb\r\n", &a);
	key_of("X-A-Very-Long-Field-Name: 2\r\n\r\nb\r\n", &b);
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* A missing final line end and a header without its blank line
	 * read as mbox export writes them back. */
	key_of("Subject: s\r\n\r\nbody", &a);
	key_of("Subject: s\n\nbody\n", &b);
	assert_memory_equal(&a, &b, sizeof(a));
	key_of("Subject: s", &a);
	key_of("Subject: s\n\n", &b);
	assert_memory_equal(&a, &b, sizeof(a));
	key_of("Subject: s\r\nStatus: O\r\n", &a);
	assert_memory_equal(&a, &b, sizeof(a));
	key_of("Subject: s\n\n\n", &a);
	assert_memory_not_equal(&a, &b, sizeof(a));
}

static void
test_archive_dedupe_key_fed_byte_at_a_time(void **state)
{
	const char *msg = "Message-ID: <x@y>\r\nX-Keywords: a\r\n b\r\n"
	    "X-A-Very-Long-Field-Name: 1\r\n\r\nline\rbare\r\n";
	struct archive_key a, b;
	struct archive_key_builder *kb = archive_key_builder_new();

	(void)state;
	for (size_t i = 0; msg[i] != '\0'; i++)
		archive_key_builder_feed(kb, msg + i, 1);
	archive_key_builder_final(&kb, &a);
	archive_key_of(msg, strlen(msg), &b);
	assert_memory_equal(&a, &b, sizeof(a));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_archive_mbox_splits_on_from_lines_only),
		cmocka_unit_test(test_archive_mbox_hidden_headers_are_flags),
		cmocka_unit_test(test_archive_mbox_crlf_and_8bit),
		cmocka_unit_test(test_archive_mbox_long_lines_pass_in_pieces),
		cmocka_unit_test(test_archive_mbox_refuses_what_is_not_mbox),
		cmocka_unit_test(test_archive_mbox_from_dates),
		cmocka_unit_test(test_archive_mbox_writer_round_trip),
		cmocka_unit_test(test_archive_eol_both_ways),
		cmocka_unit_test(test_archive_maildir_names),
		cmocka_unit_test(test_archive_maildir_keywords_file),
		cmocka_unit_test(test_archive_folder_names),
		cmocka_unit_test(test_archive_dedupe_keys),
		cmocka_unit_test(test_archive_dedupe_key_ignores_mbox_hidden_fields),
		cmocka_unit_test(test_archive_dedupe_key_fed_byte_at_a_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
