/*
 * Unit tests for the SEARCH key parser (imap_search_keys_parse in
 * imap_cmd_search.c): every key of RFC 9051 §6.4.4 and RFC 3501 §6.4.4 and
 * the store condition it becomes, NOT, OR and parentheses, sequence sets
 * and UID sets at the top level (a filter over the view) and nested (UID
 * ranges of the view's runs), "$", MODSEQ (RFC 7162 §3.1.5), and every
 * refusal: BAD for syntax, NO [LIMIT] for depth and size, NO [BADCHARSET]
 * for strings that are not UTF-8. Commands come from the real parser.
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
#include "lib/buf.h"
#include "lib/util.h"

/* 1-Feb-2024 00:00:00 UTC. */
#define FEB1 1706745600

/* A session whose view holds messages with these UIDs (sequence numbers
 * 1..5). */
static const uint32_t view_uids[] = { 10, 20, 30, 40, 50 };

struct h {
	struct imap_session s;
	struct imap_view v;
	struct imap_cmd *cmd;
	struct imap_search_keys k;
	char text[8192];
	size_t len;
};

static void
h_init(struct h *h)
{
	memset(h, 0, sizeof(*h));
	h->v.n = ARRAY_LEN(view_uids);
	h->v.msgs = xcalloc(h->v.n, sizeof(*h->v.msgs));
	for (size_t i = 0; i < h->v.n; i++)
		h->v.msgs[i].uid = view_uids[i];
	h->s.view = &h->v;
}

static void
h_deinit(struct h *h)
{
	imap_search_keys_deinit(&h->k);
	imap_cmd_free(&h->cmd);
	free(h->v.msgs);
	free(h->v.saved);
}

/* Parses "t SEARCH <keys>" (keys may hold literals, sent whole) and the
 * keys after it; returns what imap_search_keys_parse returned. */
static int
h_parse_n(struct h *h, const char *keys, size_t keys_len)
{
	struct imap_parser p;
	struct buf b;
	enum parse_rc rc;
	bool cont;

	imap_parser_init(&p, 65536, 65536);
	buf_init(&b, 200000);
	p.is_utf8 = true;
	assert_int_equal(buf_append(&b, "t SEARCH ", keys_len ? 9 : 8), 0);
	assert_int_equal(buf_append(&b, keys, keys_len), 0);
	assert_int_equal(buf_append(&b, "\r\n", 2), 0);
	do {
		rc = imap_parser_feed(&p, &b, &h->cmd, &cont);
	} while (rc == PARSE_MORE && cont);
	if (rc != PARSE_DONE)
		fail_msg("parser: %s", p.error_text ? p.error_text : "more");
	imap_parser_deinit(&p);
	buf_deinit(&b);
	return imap_search_keys_parse(&h->s, h->cmd->args, h->cmd->nargs,
	    &h->k);
}

static int
h_parse(struct h *h, const char *keys)
{
	return h_parse_n(h, keys, strlen(keys));
}

static void
put(struct h *h, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(h->text + h->len, sizeof(h->text) - h->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(h->text) - h->len);
	h->len += (size_t)n;
}

/* The tree as text: "AND(FLAG_SET:1,HEADER:From=alice)". */
static void
render(struct h *h, const struct store_cond *c)
{
	static const char *const names[] = {
		[STORE_COND_ALL] = "ALL", [STORE_COND_AND] = "AND",
		[STORE_COND_OR] = "OR", [STORE_COND_NOT] = "NOT",
		[STORE_COND_UID_RANGE] = "UID",
		[STORE_COND_FLAG_SET] = "FLAG_SET",
		[STORE_COND_FLAG_UNSET] = "FLAG_UNSET",
		[STORE_COND_KEYWORD] = "KEYWORD",
		[STORE_COND_NO_KEYWORD] = "NO_KEYWORD",
		[STORE_COND_INTERNAL_BEFORE] = "BEFORE",
		[STORE_COND_INTERNAL_SINCE] = "SINCE",
		[STORE_COND_SENT_BEFORE] = "SENT_BEFORE",
		[STORE_COND_SENT_SINCE] = "SENT_SINCE",
		[STORE_COND_SAVED_BEFORE] = "SAVED_BEFORE",
		[STORE_COND_SAVED_SINCE] = "SAVED_SINCE",
		[STORE_COND_LARGER] = "LARGER", [STORE_COND_SMALLER] = "SMALLER",
		[STORE_COND_MODSEQ] = "MODSEQ", [STORE_COND_HEADER] = "HEADER",
		[STORE_COND_BODY] = "BODY", [STORE_COND_TEXT] = "TEXT",
	};

	put(h, "%s", names[c->kind]);
	switch (c->kind) {
	case STORE_COND_AND:
	case STORE_COND_OR:
	case STORE_COND_NOT:
		put(h, "(");
		for (size_t i = 0; i < c->nchildren; i++) {
			if (i > 0)
				put(h, ",");
			render(h, &c->children[i]);
		}
		put(h, ")");
		return;
	case STORE_COND_ALL:
		return;
	case STORE_COND_UID_RANGE:
		put(h, ":%llu-%llu", (unsigned long long)c->n,
		    (unsigned long long)c->hi);
		return;
	case STORE_COND_HEADER:
		put(h, ":%s=%s", c->field, c->text);
		return;
	case STORE_COND_KEYWORD:
	case STORE_COND_NO_KEYWORD:
	case STORE_COND_BODY:
	case STORE_COND_TEXT:
		put(h, ":%s", c->text);
		return;
	default:
		put(h, ":%llu", (unsigned long long)c->n);
		return;
	}
}

/* Parses keys, which must succeed, and compares the rendered tree. */
static void
expect_tree(const char *keys, const char *want)
{
	struct h h;

	h_init(&h);
	if (h_parse(&h, keys) < 0)
		fail_msg("\"%s\" refused: %s", keys, h.k.error);
	render(&h, &h.k.root);
	if (strcmp(h.text, want) != 0)
		fail_msg("\"%s\"\n got  %s\n want %s", keys, h.text, want);
	h_deinit(&h);
}

/* Parses keys, which must fail with status (BAD or NO) and a reply text
 * containing part. */
static void
expect_refused(const char *keys, const char *status, const char *part)
{
	struct h h;

	h_init(&h);
	if (h_parse(&h, keys) == 0)
		fail_msg("\"%s\" accepted", keys);
	assert_non_null(h.k.error);
	if (strcmp(h.k.is_no ? "NO" : "BAD", status) != 0 ||
	    strstr(h.k.error, part) == NULL)
		fail_msg("\"%s\": %s %s, want %s ...%s...", keys,
		    h.k.is_no ? "NO" : "BAD", h.k.error, status, part);
	h_deinit(&h);
}

static void
test_imap_search_flag_keys_map_to_flag_bits(void **state)
{
	(void)state;
	expect_tree("ANSWERED", "AND(FLAG_SET:2)");
	expect_tree("DELETED", "AND(FLAG_SET:8)");
	expect_tree("DRAFT", "AND(FLAG_SET:16)");
	expect_tree("FLAGGED", "AND(FLAG_SET:4)");
	expect_tree("SEEN", "AND(FLAG_SET:1)");
	expect_tree("UNANSWERED", "AND(FLAG_UNSET:2)");
	expect_tree("UNDELETED", "AND(FLAG_UNSET:8)");
	expect_tree("UNDRAFT", "AND(FLAG_UNSET:16)");
	expect_tree("UNFLAGGED", "AND(FLAG_UNSET:4)");
	expect_tree("unseen", "AND(FLAG_UNSET:1)");
}

static void
test_imap_search_recent_new_match_nothing_old_everything(void **state)
{
	(void)state;
	/* No message is \Recent in this view: an empty OR is false. NEW is
	 * RECENT UNSEEN (RFC 3501 §6.4.4), so it is false too. */
	expect_tree("RECENT", "AND(OR())");
	expect_tree("NEW", "AND(AND(OR(),FLAG_UNSET:1))");
	expect_tree("OLD", "AND(NOT(OR()))");
	expect_tree("ALL", "AND(ALL)");
}

static void
test_imap_search_string_keys_map_to_header_body_text(void **state)
{
	(void)state;
	expect_tree("FROM alice", "AND(HEADER:From=alice)");
	expect_tree("TO \"bob smith\"", "AND(HEADER:To=bob smith)");
	expect_tree("CC carol", "AND(HEADER:Cc=carol)");
	expect_tree("BCC dave", "AND(HEADER:Bcc=dave)");
	expect_tree("SUBJECT {5}\r\nhello", "AND(HEADER:Subject=hello)");
	expect_tree("HEADER X-Spam yes", "AND(HEADER:X-Spam=yes)");
	/* RFC 9051 §6.4.4: an empty string matches any message with the
	 * field. */
	expect_tree("HEADER List-Id \"\"", "AND(HEADER:List-Id=)");
	expect_tree("BODY needle", "AND(BODY:needle)");
	expect_tree("TEXT \"two words\"", "AND(TEXT:two words)");
	expect_tree("SUBJECT \"caf\xc3\xa9\"", "AND(HEADER:Subject=caf\xc3\xa9)");
}

static void
test_imap_search_date_keys_are_utc_days(void **state)
{
	(void)state;
	expect_tree("BEFORE 1-Feb-2024", "AND(BEFORE:1706745600)");
	expect_tree("SINCE 01-Feb-2024", "AND(SINCE:1706745600)");
	expect_tree("ON \"1-Feb-2024\"",
	    "AND(AND(SINCE:1706745600,BEFORE:1706832000))");
	expect_tree("SENTBEFORE 1-Feb-2024", "AND(SENT_BEFORE:1706745600)");
	expect_tree("SENTSINCE 1-Feb-2024", "AND(SENT_SINCE:1706745600)");
	expect_tree("SENTON 1-Feb-2024",
	    "AND(AND(SENT_SINCE:1706745600,SENT_BEFORE:1706832000))");
}

static void
test_imap_search_size_keyword_and_modseq_keys(void **state)
{
	struct h h;

	(void)state;
	expect_tree("LARGER 1000", "AND(LARGER:1000)");
	expect_tree("SMALLER 5000000000", "AND(SMALLER:5000000000)");
	expect_tree("KEYWORD $Forwarded", "AND(KEYWORD:$Forwarded)");
	expect_tree("UNKEYWORD Junk", "AND(NO_KEYWORD:Junk)");
	/* A system flag named as a keyword is that flag. */
	expect_tree("KEYWORD \\Seen", "AND(FLAG_SET:1)");
	expect_tree("UNKEYWORD \\Flagged", "AND(FLAG_UNSET:4)");
	expect_tree("MODSEQ 620162338", "AND(MODSEQ:620162338)");
	expect_tree("MODSEQ \"/flags/\\\\draft\" all 620162338",
	    "AND(MODSEQ:620162338)");
	expect_tree("MODSEQ 0", "AND(MODSEQ:0)");

	h_init(&h);
	assert_int_equal(h_parse(&h, "SEEN"), 0);
	assert_false(h.k.has_modseq);
	h_deinit(&h);
	h_init(&h);
	assert_int_equal(h_parse(&h, "OR SEEN MODSEQ 5"), 0);
	assert_true(h.k.has_modseq);
	h_deinit(&h);
}

static void
test_imap_search_not_or_and_parentheses_nest(void **state)
{
	(void)state;
	expect_tree("NOT SEEN", "AND(NOT(FLAG_SET:1))");
	expect_tree("OR SEEN FLAGGED", "AND(OR(FLAG_SET:1,FLAG_SET:4))");
	expect_tree("OR (SEEN FROM a) NOT TO b",
	    "AND(OR(AND(FLAG_SET:1,HEADER:From=a),NOT(HEADER:To=b)))");
	expect_tree("OR OR SEEN DRAFT DELETED",
	    "AND(OR(OR(FLAG_SET:1,FLAG_SET:16),FLAG_SET:8))");
	expect_tree("((SEEN)) UNDRAFT",
	    "AND(AND(AND(FLAG_SET:1)),FLAG_UNSET:16)");
	expect_tree("NOT NOT SEEN", "AND(NOT(NOT(FLAG_SET:1)))");
}

static void
test_imap_search_top_level_sets_filter_the_view(void **state)
{
	struct h h;

	(void)state;
	h_init(&h);
	assert_int_equal(h_parse(&h, "2:4 SEEN"), 0);
	render(&h, &h.k.root);
	assert_string_equal(h.text, "AND(ALL,FLAG_SET:1)");
	assert_non_null(h.k.in_set);
	assert_false(h.k.in_set[0]);
	assert_true(h.k.in_set[1] && h.k.in_set[2] && h.k.in_set[3]);
	assert_false(h.k.in_set[4]);
	h_deinit(&h);

	/* Two sets at the top: both must hold. UIDs 15:40 are messages 2..4
	 * (UIDs 20, 30, 40). */
	h_init(&h);
	assert_int_equal(h_parse(&h, "UID 15:40 1:3"), 0);
	assert_false(h.k.in_set[0]);
	assert_true(h.k.in_set[1] && h.k.in_set[2]);
	assert_false(h.k.in_set[3] || h.k.in_set[4]);
	h_deinit(&h);

	/* "*" is the last message. */
	h_init(&h);
	assert_int_equal(h_parse(&h, "*"), 0);
	for (size_t i = 0; i < 4; i++)
		assert_false(h.k.in_set[i]);
	assert_true(h.k.in_set[4]);
	h_deinit(&h);

	/* No set: no filter. */
	h_init(&h);
	assert_int_equal(h_parse(&h, "ALL"), 0);
	assert_null(h.k.in_set);
	h_deinit(&h);
}

static void
test_imap_search_nested_sets_become_uid_ranges(void **state)
{
	(void)state;
	/* Messages 1, 2 and 4 are UIDs 10, 20 and 40: two runs. */
	expect_tree("OR 1:2,4 SEEN",
	    "AND(OR(OR(UID:10-20,UID:40-40),FLAG_SET:1))");
	expect_tree("NOT UID 25:*", "AND(NOT(OR(UID:30-50)))");
	/* A UID set naming no message of the view matches nothing. */
	expect_tree("NOT UID 60:70", "AND(NOT(OR()))");
	expect_tree("(1 3 5)",
	    "AND(AND(OR(UID:10-10),OR(UID:30-30),OR(UID:50-50)))");
}

static void
test_imap_search_saved_result_dollar(void **state)
{
	struct h h;

	(void)state;
	h_init(&h);
	h.v.saved = xcalloc(2, sizeof(*h.v.saved));
	h.v.saved[0] = 20;
	h.v.saved[1] = 50;
	h.v.nsaved = 2;
	assert_int_equal(h_parse(&h, "$"), 0);
	assert_false(h.k.in_set[0] || h.k.in_set[2] || h.k.in_set[3]);
	assert_true(h.k.in_set[1] && h.k.in_set[4]);
	h_deinit(&h);

	h_init(&h);
	h.v.saved = xcalloc(1, sizeof(*h.v.saved));
	h.v.saved[0] = 30;
	h.v.nsaved = 1;
	assert_int_equal(h_parse(&h, "OR $ UID $"), 0);
	render(&h, &h.k.root);
	assert_string_equal(h.text, "AND(OR(OR(UID:30-30),OR(UID:30-30)))");
	h_deinit(&h);

	/* Nothing saved: "$" is empty. */
	h_init(&h);
	assert_int_equal(h_parse(&h, "NOT $"), 0);
	render(&h, &h.k.root);
	assert_string_equal(h.text, "AND(NOT(OR()))");
	h_deinit(&h);
}

static void
test_imap_search_syntax_errors_are_bad(void **state)
{
	(void)state;
	expect_refused("", "BAD", "at least one key");
	expect_refused("FOO", "BAD", "Unknown search key");
	expect_refused("FROM", "BAD", "needs an argument");
	expect_refused("FROM (a)", "BAD", "Expected a string");
	expect_refused("BEFORE yesterday", "BAD", "date");
	expect_refused("BEFORE 31-Foo-2024", "BAD", "date");
	expect_refused("SINCE 1-Feb-2024-", "BAD", "date");
	expect_refused("LARGER -1", "BAD", "number");
	expect_refused("LARGER 99999999999999999999", "BAD", "number");
	expect_refused("OR SEEN", "BAD", "OR needs two");
	expect_refused("NOT", "BAD", "needs an argument");
	expect_refused("()", "BAD", "Empty parentheses");
	expect_refused("HEADER \"Bad:Name\" x", "BAD", "field name");
	expect_refused("HEADER \"\" x", "BAD", "field name");
	expect_refused("HEADER Subject", "BAD", "HEADER needs a string");
	expect_refused("KEYWORD \\Recent", "BAD", "keyword");
	expect_refused("KEYWORD \\Bogus", "BAD", "keyword");
	expect_refused("MODSEQ", "BAD", "MODSEQ needs a number");
	expect_refused("MODSEQ x", "BAD", "MODSEQ needs a number");
	expect_refused("MODSEQ \"/flags/\\\\Seen\" mine 5", "BAD", "priv");
	expect_refused("MODSEQ \"/other\" all 5", "BAD", "entry");
	expect_refused("1:x", "BAD", "Invalid sequence set");
	expect_refused("UID", "BAD", "needs an argument");
	expect_refused("UID SEEN", "BAD", "Invalid sequence set");
}

/* A sequence number beyond the last message narrows to nothing, as in
 * Dovecot (RFC 9051 §9 only says "should" BAD; FETCH and STORE keep it). */
static void
test_imap_search_numbers_beyond_the_last_message_match_nothing(
    void **state)
{
	const char *const keys[] = { "6", "OR 1:9 SEEN", "2:*" };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct h h;

		h_init(&h);
		if (h_parse(&h, keys[i]) < 0)
			fail_msg("\"%s\" refused: %s", keys[i], h.k.error);
		h_deinit(&h);
	}
}

static void
test_imap_search_strings_must_be_utf8(void **state)
{
	(void)state;
	expect_refused("SUBJECT {3}\r\n\xff\xfe\x41", "NO", "[BADCHARSET");
	expect_refused("BODY {4}\r\ncaf\xe9", "NO", "[BADCHARSET");
	/* An overlong "/" and a lone surrogate. */
	expect_refused("TEXT {2}\r\n\xc0\xaf", "NO", "[BADCHARSET");
	expect_refused("TEXT {3}\r\n\xed\xa0\x80", "NO", "[BADCHARSET");
	expect_refused("TEXT {3}\r\n\xe2\x82", "NO", "[BADCHARSET");
}

static void
test_imap_search_depth_and_size_are_limited(void **state)
{
	char keys[8192];
	size_t n = 0;

	(void)state;
	/* 16 levels of NOT are fine, 17 are not. */
	for (int i = 0; i < 16; i++)
		n += (size_t)sprintf(keys + n, "NOT ");
	strcpy(keys + n, "SEEN");
	expect_tree(keys, "AND(NOT(NOT(NOT(NOT(NOT(NOT(NOT(NOT(NOT(NOT(NOT("
	    "NOT(NOT(NOT(NOT(NOT(FLAG_SET:1)))))))))))))))))");
	n = 0;
	for (int i = 0; i < 17; i++)
		n += (size_t)sprintf(keys + n, "NOT ");
	strcpy(keys + n, "SEEN");
	expect_refused(keys, "NO", "[LIMIT]");
	n = 0;
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(keys + n, "(");
	n += (size_t)sprintf(keys + n, "SEEN");
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(keys + n, ")");
	expect_refused(keys, "NO", "[LIMIT]");
	/* 512 keys are fine, 513 are not. */
	n = 0;
	for (int i = 0; i < 512; i++)
		n += (size_t)sprintf(keys + n, "%sSEEN", i ? " " : "");
	{
		struct h h;

		h_init(&h);
		assert_int_equal(h_parse(&h, keys), 0);
		assert_int_equal(h.k.root.nchildren, 512);
		h_deinit(&h);
	}
	strcpy(keys + n, " SEEN");
	expect_refused(keys, "NO", "[LIMIT]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_search_flag_keys_map_to_flag_bits),
		cmocka_unit_test(
		    test_imap_search_recent_new_match_nothing_old_everything),
		cmocka_unit_test(
		    test_imap_search_string_keys_map_to_header_body_text),
		cmocka_unit_test(test_imap_search_date_keys_are_utc_days),
		cmocka_unit_test(test_imap_search_size_keyword_and_modseq_keys),
		cmocka_unit_test(test_imap_search_not_or_and_parentheses_nest),
		cmocka_unit_test(
		    test_imap_search_top_level_sets_filter_the_view),
		cmocka_unit_test(test_imap_search_nested_sets_become_uid_ranges),
		cmocka_unit_test(test_imap_search_saved_result_dollar),
		cmocka_unit_test(test_imap_search_syntax_errors_are_bad),
		cmocka_unit_test(
		    test_imap_search_numbers_beyond_the_last_message_match_nothing),
		cmocka_unit_test(test_imap_search_strings_must_be_utf8),
		cmocka_unit_test(test_imap_search_depth_and_size_are_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
