/*
 * Unit tests for store_search (embedded backend): every condition kind,
 * the boolean combinations, malformed trees, and text search both before
 * the background index has seen a message and after (the two paths must
 * agree), with decoded bodies (base64, quoted-printable, RFC 2047 words),
 * substrings, short strings, case and expunged messages.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice;
	int64_t inbox;
	uint32_t uid[5];	/* uid[1..4] */
	uint64_t size[5];
};

/* 1: base64 body, seen, $Work, sent 2023-11-14. */
static const char msg1[] =
    "From: Carol <carol@example.net>\r\n"
    "To: alice@example.org\r\n"
    "Subject: Quarterly report\r\n"
    "Date: Tue, 14 Nov 2023 09:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    /* "The numbers for Q1 are in the attached spreadsheet.\r\n" */
    "VGhlIG51bWJlcnMgZm9yIFExIGFyZSBpbiB0aGUgYXR0YWNoZWQgc3ByZWFkc2hl\r\n"
    "ZXQuDQo=\r\n";

/* 2: RFC 2047 subject, quoted-printable UTF-8 body, flagged, custom
 * header, sent 2024-03-09. */
static const char msg2[] =
    "From: Dieter <dieter@example.de>\r\n"
    "To: alice@example.org\r\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    "Date: Sat, 09 Mar 2024 18:30:00 +0100\r\n"
    "X-Custom: hello\r\n"
    " world\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Viele Gr=C3=BC=C3=9Fe und bis bald, say \"hi\" to everyone\r\n";

/* 4: answered reply, sent 2024-10-27. */
static const char msg4[] =
    "From: Carol <carol@example.net>\r\n"
    "To: alice@example.org\r\n"
    "Subject: Re: Quarterly report\r\n"
    "Date: Sun, 27 Oct 2024 08:00:00 +0000\r\n"
    "\r\n"
    "The REPORT looks good.\r\n";

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint32_t
deliver(struct fx *fx, const char *text, size_t len, uint32_t flags,
    const char *keywords, int64_t date, uint64_t *size_out)
{
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	uint32_t uid;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, text, len, &err), 0);
	store_delivery_add(d, fx->alice, NULL, flags, keywords, date);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_OK);
	uid = res[0].uid;
	fx->inbox = res[0].mailbox;
	free(res);
	if (size_out != NULL)
		*size_out = len;
	return uid;
}

/* 3: no Date:, a 20 KiB body with a needle deep inside, keyword. */
static char *
msg3(size_t *len)
{
	const char *head = "From: bob@example.org\r\n"
	    "To: alice@example.org\r\n"
	    "Subject: Lunch?\r\n"
	    "\r\n";
	size_t cap = 24000, n;
	char *m = malloc(cap);

	n = (size_t)snprintf(m, cap, "%s", head);
	while (n < 20000)
		n += (size_t)snprintf(m + n, cap - n,
		    "lorem ipsum dolor sit amet consectetur\r\n");
	n += (size_t)snprintf(m + n, cap - n, "a needle in a haystack\r\n");
	*len = n;
	return m;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("POSTERN_TEST_TMP");
	struct store_account a = {
		.address = "alice@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	enum store_err err;
	char msg[256];
	size_t len3;
	char *m3;

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(fx->dir, sizeof(fx->dir), "%s/search.XXXXXX", base);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st != NULL)
		store_index_pause(fx->st, true);
	if (fx->st == NULL ||
	    store_domain_add(fx->st, "example.org", &err) < 0 ||
	    store_account_add(fx->st, &a, &err) < 0)
		return -1;
	fx->alice = a.id;
	m3 = msg3(&len3);
	fx->uid[1] = deliver(fx, msg1, sizeof(msg1) - 1, STORE_FLAG_SEEN,
	    "$Work", 1700000000, &fx->size[1]);
	fx->uid[2] = deliver(fx, msg2, sizeof(msg2) - 1, STORE_FLAG_FLAGGED,
	    NULL, 1710000000, &fx->size[2]);
	fx->uid[3] = deliver(fx, m3, len3, 0, "urgent", 1720000000,
	    &fx->size[3]);
	fx->uid[4] = deliver(fx, msg4, sizeof(msg4) - 1,
	    STORE_FLAG_SEEN | STORE_FLAG_ANSWERED, NULL, 1730000000,
	    &fx->size[4]);
	free(m3);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	store_close(&fx->st);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Runs cond and compares the UIDs with the message numbers given (1..4),
 * ending with 0. */
static void
expect(struct fx *fx, const struct store_cond *cond, ...)
{
	uint32_t *uids, want[8];
	size_t n, nwant = 0;
	enum store_err err;
	va_list ap;
	int k;

	va_start(ap, cond);
	while ((k = va_arg(ap, int)) != 0)
		want[nwant++] = fx->uid[k];
	va_end(ap);
	if (store_search(fx->st, fx->inbox, cond, &uids, &n, &err) < 0)
		fail_msg("search failed: %s", store_err_text(err));
	if (n != nwant) {
		fprintf(stderr, "%s \"%s\": got %zu UIDs:",
		    cond != NULL && cond->field != NULL ? cond->field : "",
		    cond != NULL && cond->text != NULL ? cond->text : "", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %u", uids[i]);
		fprintf(stderr, "\n");
	}
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(uids[i], want[i]);
	free(uids);
}

static void
expect_text(struct fx *fx, enum store_cond_kind kind, const char *field,
    const char *text, int a, int b)
{
	struct store_cond c = { .kind = kind, .field = field, .text = text };

	expect(fx, &c, a, b, 0);
}

static void
test_store_search_all_and_uid_range(void **state)
{
	struct fx *fx = *state;
	struct store_cond all = { .kind = STORE_COND_ALL };
	struct store_cond range = { .kind = STORE_COND_UID_RANGE, .n = 2,
	    .hi = 3 };
	struct store_cond high = { .kind = STORE_COND_UID_RANGE, .n = 4,
	    .hi = UINT32_MAX };
	uint32_t *uids;
	enum store_err err;
	size_t n;

	expect(fx, &all, 1, 2, 3, 4, 0);
	expect(fx, NULL, 1, 2, 3, 4, 0);
	expect(fx, &range, 2, 3, 0);
	expect(fx, &high, 4, 0);
	range.n = 5;
	range.hi = 9;
	expect(fx, &range, 0);
	range.n = 3;
	range.hi = 2;
	assert_int_equal(store_search(fx->st, fx->inbox, &range, &uids, &n,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_search(fx->st, 987654, &all, &uids, &n, &err),
	    -1);
	assert_int_equal(err, STORE_NOT_FOUND);
}

static void
test_store_search_flags(void **state)
{
	struct fx *fx = *state;
	struct store_cond c = { .kind = STORE_COND_FLAG_SET,
	    .n = STORE_FLAG_SEEN };

	expect(fx, &c, 1, 4, 0);
	c.n = STORE_FLAG_SEEN | STORE_FLAG_ANSWERED;
	expect(fx, &c, 4, 0);
	c.kind = STORE_COND_FLAG_UNSET;
	c.n = STORE_FLAG_SEEN;
	expect(fx, &c, 2, 3, 0);
	c.n = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED;
	expect(fx, &c, 3, 0);
	c.kind = STORE_COND_FLAG_SET;
	c.n = STORE_FLAG_DELETED;
	expect(fx, &c, 0);
}

static void
test_store_search_keywords(void **state)
{
	struct fx *fx = *state;
	struct store_cond c = { .kind = STORE_COND_KEYWORD, .text = "$work" };

	expect(fx, &c, 1, 0);
	c.text = "URGENT";
	expect(fx, &c, 3, 0);
	c.text = "$Wor";
	expect(fx, &c, 0);
	c.kind = STORE_COND_NO_KEYWORD;
	c.text = "$Work";
	expect(fx, &c, 2, 3, 4, 0);
}

static void
test_store_search_dates(void **state)
{
	struct fx *fx = *state;
	struct store_cond c = { .kind = STORE_COND_INTERNAL_BEFORE,
	    .n = 1710000000 };

	expect(fx, &c, 1, 0);
	c.kind = STORE_COND_INTERNAL_SINCE;
	expect(fx, &c, 2, 3, 4, 0);
	/* Date: headers; message 3 has none and counts by its internal
	 * date (2024-07-03). */
	c.kind = STORE_COND_SENT_BEFORE;
	c.n = 1704067200;	/* 2024-01-01 */
	expect(fx, &c, 1, 0);
	c.kind = STORE_COND_SENT_SINCE;
	c.n = 1719792000;	/* 2024-07-01 */
	expect(fx, &c, 3, 4, 0);
	c.n = 1709942400;	/* 2024-03-09 00:00 UTC */
	expect(fx, &c, 2, 3, 4, 0);
}

static void
test_store_search_sizes(void **state)
{
	struct fx *fx = *state;
	struct store_cond c = { .kind = STORE_COND_LARGER,
	    .n = fx->size[2] };

	/* Sizes: 4 < 1 < 2 < 3. */
	assert_true(fx->size[4] < fx->size[1]);
	assert_true(fx->size[1] < fx->size[2]);
	expect(fx, &c, 3, 0);
	c.n = fx->size[2] - 1;
	expect(fx, &c, 2, 3, 0);
	c.kind = STORE_COND_SMALLER;
	c.n = fx->size[1];
	expect(fx, &c, 4, 0);
	c.n = fx->size[1] + 1;
	expect(fx, &c, 1, 4, 0);
}

static void
test_store_search_modseq(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_change ch = {
		.mailbox = fx->inbox, .uids = &fx->uid[2], .nuids = 1,
		.kind = STORE_CHANGE_FLAGS, .mode = STORE_FLAGS_ADD,
		.flags = STORE_FLAG_SEEN,
	};
	struct store_cond c = { .kind = STORE_COND_MODSEQ };

	assert_int_equal(store_change_commit(fx->st, &ch, &r), 0);
	c.n = r.modseq;
	store_change_result_deinit(&r);
	expect(fx, &c, 2, 0);
	c.n = 0;
	expect(fx, &c, 1, 2, 3, 4, 0);
	c.n = UINT32_MAX;
	expect(fx, &c, 0);
}

/* The text checks, run both before and after indexing. */
static void
text_checks(struct fx *fx)
{
	/* HEADER: any field, unfolded, case-insensitive. */
	expect_text(fx, STORE_COND_HEADER, "subject", "QUARTERLY", 1, 4);
	expect_text(fx, STORE_COND_HEADER, "X-Custom", "hello world", 2, 0);
	expect_text(fx, STORE_COND_HEADER, "x-custom", "", 2, 0);
	expect_text(fx, STORE_COND_HEADER, "X-Missing", "", 0, 0);
	expect_text(fx, STORE_COND_HEADER, "From", "carol@example", 1, 4);
	expect_text(fx, STORE_COND_HEADER, "FROM", "example.de", 2, 0);
	/* Decoded RFC 2047 words match as read. */
	expect_text(fx, STORE_COND_HEADER, "Subject", "gr\xc3\xbc\xc3\x9f" "e",
	    2, 0);
	expect_text(fx, STORE_COND_HEADER, "Subject", "K\xc3\xb6ln", 2, 0);
	/* BODY: decoded, header not included. */
	expect_text(fx, STORE_COND_BODY, NULL, "attached spreadsheet", 1, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "needle in a HAYSTACK", 3, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "Viele Gr\xc3\xbc\xc3\x9f" "e",
	    2, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "say \"hi\"", 2, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "report", 4, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "quarterly", 0, 0);
	expect_text(fx, STORE_COND_BODY, NULL, "spreadsheets", 0, 0);
	/* Two characters: no trigram, still found. */
	expect_text(fx, STORE_COND_BODY, NULL, "q1", 1, 0);
	/* An empty string matches everything (RFC 9051 §6.4.4). */
	{
		struct store_cond c = { .kind = STORE_COND_BODY, .text = "" };

		expect(fx, &c, 1, 2, 3, 4, 0);
	}
	/* TEXT: header or body. */
	expect_text(fx, STORE_COND_TEXT, NULL, "quarterly", 1, 4);
	expect_text(fx, STORE_COND_TEXT, NULL, "dieter@example.de", 2, 0);
	expect_text(fx, STORE_COND_TEXT, NULL, "haystack", 3, 0);
	expect_text(fx, STORE_COND_TEXT, NULL, "k\xc3\xb6ln", 2, 0);
	expect_text(fx, STORE_COND_TEXT, NULL, "no such words here", 0, 0);
}

static void
test_store_search_text_before_and_after_indexing(void **state)
{
	struct fx *fx = *state;
	enum store_err err;

	text_checks(fx);
	assert_int_equal(store_index_wait(fx->st, &err), 0);
	text_checks(fx);
}

static void
test_store_search_text_finds_new_message_after_index(void **state)
{
	struct fx *fx = *state;
	static const char late[] = "Subject: late\r\n\r\nzebra crossing\r\n";
	enum store_err err;

	assert_int_equal(store_index_wait(fx->st, &err), 0);
	store_index_pause(fx->st, true);
	fx->uid[1] = deliver(fx, late, sizeof(late) - 1, 0, NULL, 0, NULL);
	/* Not indexed yet, then indexed: either way it is found. */
	expect_text(fx, STORE_COND_BODY, NULL, "zebra cross", 1, 0);
	assert_int_equal(store_index_wait(fx->st, &err), 0);
	expect_text(fx, STORE_COND_BODY, NULL, "zebra cross", 1, 0);
}

static void
test_store_search_text_forgets_expunged(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_change ch = {
		.mailbox = fx->inbox, .uids = &fx->uid[3], .nuids = 1,
		.kind = STORE_CHANGE_EXPUNGE,
	};
	enum store_err err;

	assert_int_equal(store_index_wait(fx->st, &err), 0);
	assert_int_equal(store_change_commit(fx->st, &ch, &r), 0);
	store_change_result_deinit(&r);
	expect_text(fx, STORE_COND_BODY, NULL, "haystack", 0, 0);
	expect_text(fx, STORE_COND_TEXT, NULL, "report", 1, 4);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

static void
test_store_search_many_messages_unique_tokens(void **state)
{
	struct fx *fx = *state;
	enum store_err err;
	char m[256], tok[32];
	uint32_t first = 0;

	for (int i = 0; i < 300; i++) {
		int len = snprintf(m, sizeof(m), "Subject: bulk %d\r\n\r\n"
		    "common words and the token tok%05d here\r\n", i, i);
		uint32_t uid = deliver(fx, m, (size_t)len, 0, NULL, 0, NULL);

		if (i == 0)
			first = uid;
	}
	assert_int_equal(store_index_wait(fx->st, &err), 0);
	for (int i = 0; i < 300; i += 37) {
		uint32_t *uids;
		size_t n;
		struct store_cond c = { .kind = STORE_COND_BODY, .text = tok };

		snprintf(tok, sizeof(tok), "TOK%05d", i);
		assert_int_equal(store_search(fx->st, fx->inbox, &c, &uids, &n,
		    &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(uids[0], first + (uint32_t)i);
		free(uids);
	}
	{
		struct store_cond c = { .kind = STORE_COND_BODY,
		    .text = "common words" };
		uint32_t *uids;
		size_t n;

		assert_int_equal(store_search(fx->st, fx->inbox, &c, &uids, &n,
		    &err), 0);
		assert_int_equal(n, 300);
		free(uids);
	}
}

static void
test_store_search_boolean_combinations(void **state)
{
	struct fx *fx = *state;
	struct store_cond kids[2] = {
		{ .kind = STORE_COND_FLAG_SET, .n = STORE_FLAG_FLAGGED },
		{ .kind = STORE_COND_KEYWORD, .text = "urgent" },
	};
	struct store_cond c = { .kind = STORE_COND_OR, .children = kids,
	    .nchildren = 2 };
	struct store_cond seen = { .kind = STORE_COND_FLAG_SET,
	    .n = STORE_FLAG_SEEN };
	struct store_cond not = { .kind = STORE_COND_NOT, .children = &seen,
	    .nchildren = 1 };
	struct store_cond both[2] = {
		{ .kind = STORE_COND_TEXT, .text = "report" },
		{ .kind = STORE_COND_FLAG_SET, .n = STORE_FLAG_ANSWERED },
	};
	struct store_cond and = { .kind = STORE_COND_AND, .children = both,
	    .nchildren = 2 };
	struct store_cond nested[2] = { not, and };
	struct store_cond or2 = { .kind = STORE_COND_OR, .children = nested,
	    .nchildren = 2 };

	expect(fx, &c, 2, 3, 0);
	expect(fx, &not, 2, 3, 0);
	expect(fx, &and, 4, 0);
	expect(fx, &or2, 2, 3, 4, 0);
	c.nchildren = 0;
	expect(fx, &c, 0);
	c.kind = STORE_COND_AND;
	expect(fx, &c, 1, 2, 3, 4, 0);
}

static void
test_store_search_malformed_trees_refused(void **state)
{
	struct fx *fx = *state;
	struct store_cond deep[40];
	struct store_cond c = { .kind = STORE_COND_NOT };
	uint32_t *uids;
	enum store_err err;
	size_t n;

	assert_int_equal(store_search(fx->st, fx->inbox, &c, &uids, &n, &err),
	    -1);
	assert_int_equal(err, STORE_INVALID);
	c = (struct store_cond){ .kind = STORE_COND_HEADER, .field = "Bad:",
	    .text = "x" };
	assert_int_equal(store_search(fx->st, fx->inbox, &c, &uids, &n, &err),
	    -1);
	assert_int_equal(err, STORE_INVALID);
	c = (struct store_cond){ .kind = STORE_COND_BODY };
	assert_int_equal(store_search(fx->st, fx->inbox, &c, &uids, &n, &err),
	    -1);
	assert_int_equal(err, STORE_INVALID);
	for (int i = 0; i < 40; i++) {
		deep[i].kind = i < 39 ? STORE_COND_NOT : STORE_COND_ALL;
		deep[i].children = i < 39 ? &deep[i + 1] : NULL;
		deep[i].nchildren = i < 39 ? 1 : 0;
	}
	assert_int_equal(store_search(fx->st, fx->inbox, &deep[0], &uids, &n,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);
	/* 32 levels are fine: NOT 31 times (odd) over ALL is nothing. */
	assert_int_equal(store_search(fx->st, fx->inbox, &deep[8], &uids, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	free(uids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_store_search_all_and_uid_range),
		T(test_store_search_flags),
		T(test_store_search_keywords),
		T(test_store_search_dates),
		T(test_store_search_sizes),
		T(test_store_search_modseq),
		T(test_store_search_text_before_and_after_indexing),
		T(test_store_search_text_finds_new_message_after_index),
		T(test_store_search_text_forgets_expunged),
		T(test_store_search_many_messages_unique_tokens),
		T(test_store_search_boolean_combinations),
		T(test_store_search_malformed_trees_refused),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
