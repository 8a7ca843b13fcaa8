/*
 * Unit tests for what SORT and THREAD (RFC 5256) compute in mime: base
 * subjects (§2.1: nested "Re: [list] Fwd: Re:", blobs, "(fwd)" trailers,
 * "[fwd: ...]" wrappers), the i;unicode-casemap key, the first mailbox of
 * an ENVELOPE field, and both threading algorithms on tricky inputs
 * (loops in References, missing parents, duplicate Message-IDs, a dummy
 * with one child promoted, subject grouping, siblings by date), written
 * as IMAP sends them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "lib/util.h"
#include "mime/mime.h"

static void
check_base(const char *subject, const char *want, bool want_reply)
{
	bool is_reply = !want_reply;
	char *b = mime_subject_base(subject, &is_reply);

	if (strcmp(b, want) != 0 || is_reply != want_reply)
		fail_msg("base of \"%s\": \"%s\" reply=%d, want \"%s\" "
		    "reply=%d", subject, b, is_reply, want, want_reply);
	free(b);
}

static void
test_mime_subject_base_rfc5256_rules(void **state)
{
	(void)state;
	check_base("hello", "hello", false);
	check_base("Re: hello", "hello", true);
	check_base("RE:  re:hello  ", "hello", true);
	check_base("Re: [list] Fwd: Re: hello", "hello", true);
	check_base("[list] Re: [other] FW: hello", "hello", true);
	check_base("Re[2]: hello", "hello", true);
	check_base("Re [list]: hello", "hello", true);
	check_base("Re : hello", "hello", true);
	check_base("hello (fwd)", "hello", true);
	check_base("hello (FWD) (fwd)  ", "hello", true);
	check_base("[fwd: Re: hello]", "hello", true);
	check_base("[Fwd: [fwd: hello] (fwd)]", "hello", true);
	check_base("[list] hello", "hello", false);
	/* §2.1 step 4: a blob stays when nothing would be left. */
	check_base("[list]", "[list]", false);
	check_base("Re: [list]", "[list]", true);
	check_base("Fw: a\t\tb   c", "a b c", true);
	check_base("Re: (fwd)", "", true);
	check_base("Reply: hello", "Reply: hello", false);
	check_base("refund", "refund", false);
	check_base("", "", false);
	check_base(NULL, "", false);
	check_base("[unclosed Re: x", "[unclosed Re: x", false);
}

static void
test_mime_collate_key_casemaps(void **state)
{
	char *a, *b;

	(void)state;
	a = mime_collate_key("Hello World");
	assert_string_equal(a, "HELLO WORLD");
	free(a);
	/* RFC 5051: titlecase then NFKD: "été" and "ÉTÉ" are one key, and
	 * the precomposed and decomposed forms agree. */
	a = mime_collate_key("\xc3\xa9t\xc3\xa9");
	b = mime_collate_key("E\xcc\x81T\xc3\x89");
	assert_string_equal(a, b);
	free(a);
	free(b);
	a = mime_collate_key("\xff\xfe abc");
	assert_string_equal(a, "\xff\xfe ABC");
	free(a);
	a = mime_collate_key(NULL);
	assert_string_equal(a, "");
	free(a);
}

static void
test_mime_envelope_address_first_address_group_name_included(void **state)
{
	const char msg[] =
	    "From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.org>, b@c.d\r\n"
	    "To: undisclosed-recipients: ;, \"Zed\" <zed@example.com>\r\n"
	    "Cc: team: amy@example.net, bob@example.net;\r\n"
	    "Subject: x\r\n\r\nbody\r\n";
	struct mime_info mi;
	struct mime_envelope_addr a;
	char *d;

	(void)state;
	assert_int_equal(mime_parse(msg, sizeof(msg) - 1, &mi), 0);
	assert_int_equal(mime_envelope_address(mi.envelope,
	    MIME_ENVELOPE_FROM, &a), 0);
	assert_string_equal(a.mailbox, "Joerg");
	assert_string_equal(a.host, "Example.org");
	d = mime_envelope_display(&a);
	assert_string_equal(d, "J\xc3\xb6rg");
	free(d);
	mime_envelope_addr_deinit(&a);
	/* RFC 5256 §3 with RFC 9051 §7.5.2: a group comes first as its
	 * start marker, whose addr-mailbox is the group name. */
	assert_int_equal(mime_envelope_address(mi.envelope, MIME_ENVELOPE_TO,
	    &a), 0);
	assert_string_equal(a.mailbox, "undisclosed-recipients");
	assert_null(a.host);
	mime_envelope_addr_deinit(&a);
	assert_int_equal(mime_envelope_address(mi.envelope, MIME_ENVELOPE_CC,
	    &a), 0);
	assert_string_equal(a.mailbox, "team");
	d = mime_envelope_display(&a);
	assert_string_equal(d, "team");
	free(d);
	mime_envelope_addr_deinit(&a);
	mime_info_deinit(&mi);
	/* NIL and garbage. */
	assert_int_equal(mime_envelope_address("(NIL NIL NIL NIL NIL NIL NIL "
	    "NIL NIL NIL)", MIME_ENVELOPE_CC, &a), 0);
	assert_null(a.mailbox);
	d = mime_envelope_display(&a);
	assert_string_equal(d, "");
	free(d);
	assert_int_equal(mime_envelope_address("(\"x", MIME_ENVELOPE_FROM,
	    &a), -1);
	assert_int_equal(mime_envelope_address("({99}\r\nab",
	    MIME_ENVELOPE_FROM, &a), -1);
	assert_int_equal(mime_envelope_address(NULL, MIME_ENVELOPE_FROM, &a),
	    -1);
}

/* Threads msgs (numbered 1..n unless numbers) and compares the IMAP
 * text. */
static void
check_thread(const struct mime_thread_msg *msgs, size_t n,
    enum mime_thread_algo algo, const uint32_t *numbers, const char *want)
{
	struct mime_thread t;
	uint32_t *nums = xcalloc(n + 1, sizeof(*nums));
	char *s;

	for (size_t i = 0; i < n; i++)
		nums[i] = numbers != NULL ? numbers[i] : (uint32_t)(i + 1);
	assert_int_equal(mime_thread_build(msgs, n, algo, &t), 0);
	s = mime_thread_format(&t, nums);
	if (strcmp(s, want) != 0)
		fail_msg("thread: \"%s\", want \"%s\"", s, want);
	free(s);
	mime_thread_deinit(&t);
	free(nums);
}

#define M(t, subj, id, refs, irt) { t, subj, id, refs, irt }

static void
test_mime_thread_references_chain_and_siblings_by_date(void **state)
{
	/* RFC 5256 §4's example shape "(3 6 (4 23)(44 7 96))". */
	const struct mime_thread_msg m[] = {
		M(1, "x", "m3", NULL, NULL),
		M(2, "Re: x", "m6", "m3", NULL),
		M(3, "Re: x", "m4", "m3 m6", NULL),
		M(4, "Re: x", "m23", "m3 m6 m4", NULL),
		M(5, "Re: x", "m44", "m3 m6", NULL),
		M(6, "Re: x", "m7", "m3 m6 m44", NULL),
		M(7, "Re: x", "m96", "m3 m6 m44 m7", NULL),
	};
	const uint32_t nums[] = { 3, 6, 4, 23, 44, 7, 96 };
	/* Siblings by sent date, not by arrival. */
	const struct mime_thread_msg late[] = {
		M(10, "a", "a", NULL, NULL),
		M(30, "b", "b", "a", NULL),
		M(20, "c", "c", "a", NULL),
	};

	(void)state;
	check_thread(m, 7, MIME_THREAD_REFERENCES, nums,
	    "(3 6 (4 23)(44 7 96))");
	check_thread(late, 3, MIME_THREAD_REFERENCES, NULL, "(1 (3)(2))");
	check_thread(NULL, 0, MIME_THREAD_REFERENCES, NULL, "");
}

static void
test_mime_thread_references_missing_parents_and_dummies(void **state)
{
	/* A dummy with one child at the top is replaced by it. */
	const struct mime_thread_msg one[] = {
		M(1, "s1", "a", "missing", NULL),
		M(2, "Re: s1", "b", "a", NULL),
	};
	/* A dummy with two children stays: "((..)(..))". */
	const struct mime_thread_msg two[] = {
		M(1, "hello", "a", NULL, NULL),
		M(2, "Re: hello", "b", "a", NULL),
		M(3, "Re: hello", "c", "a b", NULL),
		M(4, "other", "d", "x", NULL),
		M(5, "Re: other", "e", "x", NULL),
	};
	/* A dummy in the middle of a chain gives its child to its parent. */
	const struct mime_thread_msg mid[] = {
		M(1, "p", "a", NULL, NULL),
		M(2, "q", "c", "a gone", NULL),
	};

	(void)state;
	check_thread(one, 2, MIME_THREAD_REFERENCES, NULL, "(1 2)");
	check_thread(two, 5, MIME_THREAD_REFERENCES, NULL,
	    "(1 2 3)((4)(5))");
	check_thread(mid, 2, MIME_THREAD_REFERENCES, NULL, "(1 2)");
}

static void
test_mime_thread_references_loops_and_duplicates(void **state)
{
	const struct mime_thread_msg loop[] = {
		M(1, "x", "a", "b", NULL),
		M(2, "y", "b", "a", NULL),
	};
	const struct mime_thread_msg self[] = {
		M(1, "x", "a", "a a", NULL),
	};
	const struct mime_thread_msg cycle[] = {
		M(1, "x", "a", "c b", NULL),
		M(2, "y", "b", "a c", NULL),
		M(3, "z", "c", "b a", NULL),
	};
	/* The second "a" gets an id of its own; replies go to the first. */
	const struct mime_thread_msg dup[] = {
		M(1, "p", "a", NULL, NULL),
		M(2, "q", "a", NULL, NULL),
		M(3, "Re: p", "c", "a", NULL),
	};
	/* In-Reply-To counts only without References. */
	const struct mime_thread_msg irt[] = {
		M(1, "u", "a", NULL, NULL),
		M(2, "v", "b", NULL, "a zz"),
		M(3, "w", "c", "b", "a"),
	};
	struct mime_thread t;

	(void)state;
	check_thread(loop, 2, MIME_THREAD_REFERENCES, NULL, "(2 1)");
	check_thread(self, 1, MIME_THREAD_REFERENCES, NULL, "(1)");
	assert_int_equal(mime_thread_build(cycle, 3, MIME_THREAD_REFERENCES,
	    &t), 0);
	free(mime_thread_format(&t, (const uint32_t[]){ 1, 2, 3 }));
	mime_thread_deinit(&t);
	check_thread(dup, 3, MIME_THREAD_REFERENCES, NULL, "(1 3)(2)");
	check_thread(irt, 3, MIME_THREAD_REFERENCES, NULL, "(1 2 3)");
}

static void
test_mime_thread_references_subject_grouping(void **state)
{
	/* A reply without references joins the original as its child. */
	const struct mime_thread_msg reply[] = {
		M(1, "topic", "a", NULL, NULL),
		M(2, "Re: topic", "b", NULL, NULL),
	};
	/* Two originals with one subject: a new dummy holds both. */
	const struct mime_thread_msg same[] = {
		M(1, "same", "a", NULL, NULL),
		M(2, "SAME", "b", NULL, NULL),
		M(3, "different", "c", NULL, NULL),
	};
	/* The original is preferred in the table over an earlier reply. */
	const struct mime_thread_msg pref[] = {
		M(1, "Re: t", "a", NULL, NULL),
		M(2, "t", "b", NULL, NULL),
	};
	/* Empty subjects are never grouped. */
	const struct mime_thread_msg empty[] = {
		M(1, "", "a", NULL, NULL),
		M(2, "Re:", "b", NULL, NULL),
	};

	(void)state;
	check_thread(reply, 2, MIME_THREAD_REFERENCES, NULL, "(1 2)");
	check_thread(same, 3, MIME_THREAD_REFERENCES, NULL, "((1)(2))(3)");
	check_thread(pref, 2, MIME_THREAD_REFERENCES, NULL, "(2 1)");
	check_thread(empty, 2, MIME_THREAD_REFERENCES, NULL, "(1)(2)");
}

static void
test_mime_thread_orderedsubject(void **state)
{
	const struct mime_thread_msg m[] = {
		M(5, "b", NULL, NULL, NULL),
		M(3, "a", NULL, NULL, NULL),
		M(6, "Re: b", NULL, NULL, NULL),
		M(1, "Re: a", NULL, NULL, NULL),
		M(7, "[list] b", NULL, NULL, NULL),
		M(2, "c", NULL, NULL, NULL),
	};

	(void)state;
	check_thread(m, 6, MIME_THREAD_ORDEREDSUBJECT, NULL,
	    "(4 2)(6)(1 (3)(5))");
}

static void
test_mime_thread_long_chain_does_not_recurse(void **state)
{
	enum { N = 200000 };
	struct mime_thread_msg *m = xcalloc(N, sizeof(*m));
	char (*ids)[16] = xcalloc(N, sizeof(*ids));
	struct mime_thread t;
	char *s;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "id%zu", i);
		m[i].sent = (int64_t)i;
		m[i].subject = "chain";
		m[i].message_id = ids[i];
		m[i].in_reply_to = i > 0 ? ids[i - 1] : NULL;
	}
	assert_int_equal(mime_thread_build(m, N, MIME_THREAD_REFERENCES, &t),
	    0);
	uint32_t *nums = xcalloc(N, sizeof(*nums));

	for (size_t i = 0; i < N; i++)
		nums[i] = (uint32_t)(i + 1);
	s = mime_thread_format(&t, nums);
	assert_true(strncmp(s, "(1 2 3 ", 7) == 0);
	assert_string_equal(s + strlen(s) - 8, " 200000)");
	free(s);
	free(nums);
	mime_thread_deinit(&t);
	free(ids);
	free(m);
}

/* Crafted References that would make every link walk a deep chain:
 * the walks are bounded, so this ends quickly and well-formed. */
static void
test_mime_thread_crafted_deep_walks_are_bounded(void **state)
{
	enum { CHAIN = 20000, PAIRS = 20000, N = CHAIN + 2 * PAIRS };
	struct mime_thread_msg *m = xcalloc(N, sizeof(*m));
	char (*ids)[32] = xcalloc(N, sizeof(*ids));
	char (*refs)[64] = xcalloc(N, sizeof(*refs));
	uint32_t *nums = xcalloc(N, sizeof(*nums));
	struct mime_thread t;
	char *s;
	size_t open = 0, close = 0;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "m%zu", i);
		m[i].message_id = ids[i];
		m[i].sent = (int64_t)i;
		m[i].subject = "x";
		nums[i] = (uint32_t)(i + 1);
		if (i > 0 && i < CHAIN) {
			m[i].in_reply_to = ids[i - 1];
		} else if (i >= CHAIN) {
			size_t j = (i - CHAIN) / 2;

			/* First a child of dummy "d<j>", then a message
			 * that makes the chain's end the dummy's parent. */
			if ((i - CHAIN) % 2 == 0)
				snprintf(refs[i], sizeof(refs[i]), "d%zu", j);
			else
				snprintf(refs[i], sizeof(refs[i]), "m%d d%zu",
				    CHAIN - 1, j);
			m[i].references = refs[i];
		}
	}
	assert_int_equal(mime_thread_build(m, N, MIME_THREAD_REFERENCES, &t),
	    0);
	s = mime_thread_format(&t, nums);
	for (char *p = s; *p != '\0'; p++) {
		open += *p == '(';
		close += *p == ')';
	}
	assert_int_equal(open, close);
	free(s);
	mime_thread_deinit(&t);
	free(nums);
	free(refs);
	free(ids);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mime_subject_base_rfc5256_rules),
		cmocka_unit_test(test_mime_collate_key_casemaps),
		cmocka_unit_test(test_mime_envelope_address_first_address_group_name_included),
		cmocka_unit_test(
		    test_mime_thread_references_chain_and_siblings_by_date),
		cmocka_unit_test(
		    test_mime_thread_references_missing_parents_and_dummies),
		cmocka_unit_test(
		    test_mime_thread_references_loops_and_duplicates),
		cmocka_unit_test(test_mime_thread_references_subject_grouping),
		cmocka_unit_test(test_mime_thread_orderedsubject),
		cmocka_unit_test(test_mime_thread_long_chain_does_not_recurse),
		cmocka_unit_test(
		    test_mime_thread_crafted_deep_walks_are_bounded),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
