/*
 * Unit tests for sieve: compile errors name their line and what is wrong
 * (unknown command, unterminated string or comment, missing ';', tag of
 * another command, extension not required, nesting and size limits);
 * strings (escapes, text: with dot-stuffing, numbers with K/M/G,
 * encoded characters); :matches with '*', '?' and '\' and its captures
 * (RFC 5229 §3.2's example); the i;ascii-numeric comparator; run-time
 * limits (redirects, CPU steps) ending in the implicit keep with a
 * reason; the action list of the API (fileinto with flags and :create,
 * redirect :copy, vacation, header edits, duplicate tracking).
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

#include "lib/util.h"
#include "sieve/sieve.h"
#include "sieve/sieve_int.h"

static const char msg[] =
    "From: \"Alice\" <alice+lists@example.org>\r\n"
    "To: bob@example.com\r\n"
    "Subject: [acme-users] [fwd] version 1.0 is out\r\n"
    "Date: Mon, 7 Dec 2026 12:34:56 +0100\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "\r\n"
    "Hello there.\r\n";

/* Compiles s, expecting an error at line with text containing what. */
static void
assert_error(const char *s, unsigned line, const char *what)
{
	struct sieve_error err;
	struct sieve_program *p = sieve_compile(s, strlen(s), NULL, &err);

	if (p != NULL)
		fail_msg("compiled: %s", s);
	if (err.line != line || strstr(err.msg, what) == NULL)
		fail_msg("line %u '%s', expected line %u '%s'", err.line,
		    err.msg, line, what);
}

/* Compiles and runs s on msg; returns the result (deinit it). */
static int
run(const char *s, struct sieve_result *res)
{
	struct sieve_error err;
	struct sieve_program *p = sieve_compile(s, strlen(s), NULL, &err);
	struct sieve_input in;
	int rc;

	if (p == NULL)
		fail_msg("line %u: %s", err.line, err.msg);
	memset(&in, 0, sizeof(in));
	in.message = msg;
	in.len = strlen(msg);
	in.env_from = "alice@example.org";
	in.env_to = "bob@example.com";
	rc = sieve_run(p, &in, NULL, res);
	sieve_program_free(&p);
	return rc;
}

/* The mailbox of the single fileinto of running s ("" when none). */
static char *
folder_of(const char *s)
{
	struct sieve_result res;
	char *f = NULL;

	assert_int_equal(run(s, &res), 0);
	for (size_t i = 0; i < res.nactions; i++) {
		if (res.actions[i].type == SIEVE_ACT_FILEINTO)
			f = xstrdup(res.actions[i].mailbox);
	}
	sieve_result_deinit(&res);
	return f != NULL ? f : xstrdup("");
}

static void
assert_folder(const char *s, const char *want)
{
	char *f = folder_of(s);

	if (strcmp(f, want) != 0)
		fail_msg("folder '%s', expected '%s' for: %s", f, want, s);
	free(f);
}

static void
test_sieve_error_unknown_command_names_line(void **state)
{
	(void)state;
	assert_error("require \"fileinto\";\nif true {\n  filein \"x\";\n}\n",
	    3, "unknown command 'filein'");
	struct sieve_error err = { 3, "unknown command 'filein'" };
	char out[300];

	sieve_error_format(&err, out, sizeof(out));
	assert_string_equal(out, "line 3: unknown command 'filein'");
}

static void
test_sieve_error_syntax(void **state)
{
	(void)state;
	assert_error("if header \"subject\" \"abc { discard; }", 1,
	    "unterminated string");
	assert_error("keep;\n/* never\nends", 2, "unterminated comment");
	assert_error("keep\ndiscard;", 2, "expected ';'");
	assert_error("if true { discard;", 1, "missing '}'");
	assert_error("}", 1, "unexpected '}'");
	assert_error("keep;\n\nelse { discard; }", 3, "without a preceding if");
	assert_error("if headr \"a\" \"b\" { }", 1, "unknown test 'headr'");
	assert_error("true;", 1, "is a test, not a command");
	assert_error("if size 10 { }", 1, "exactly one of :over or :under");
	assert_error("if header :is :contains \"a\" \"b\" { }", 1,
	    "more than one match type");
	assert_error("if header :over \"a\" \"b\" { }", 1,
	    "unknown tagged argument ':over'");
	assert_error("redirect;", 1, "expected 1 argument");
	assert_error("redirect [\"a@b\", \"c@d\"];", 1, "must be a string");
	assert_error("if exists [\"a\" \"b\"] { }", 1, "expected ',' or ']'");
	assert_error("if size :over 10Q { }", 1, "invalid number");
	assert_error("if size :over 99999999999999999999 { }", 1,
	    "number too large");
	assert_error("keep; require \"fileinto\";", 1, "only allowed at the top");
	assert_error("require \"nope\";", 1, "unknown Sieve capability 'nope'");
	assert_error("require \"reject\"; reject text: garbage\n.\n;", 1,
	    "garbage after text:");
	assert_error("require \"reject\"; reject text:\nno end\n", 1,
	    "unterminated multi-line");
	assert_error("if header :comparator \"i;x\" \"a\" \"b\" { }", 1,
	    "unknown comparator");
	assert_error("redirect \"not an address\";", 1, "is invalid");
}

static void
test_sieve_error_extension_not_required(void **state)
{
	(void)state;
	assert_error("fileinto \"x\";", 1, "unknown command 'fileinto'");
	assert_error("redirect :copy \"a@b.c\";", 1, "needs its extension");
	assert_error("if header :regex \"a\" \"b\" { }", 1,
	    "needs its extension");
	assert_error("require \"vacation\"; vacation :seconds 5 \"x\";", 1,
	    "needs its extension");
	assert_error("if header :contains :comparator \"i;ascii-numeric\" "
	    "\"a\" \"1\" { }", 1, "unknown comparator");
	assert_error("require \"regex\"; if header :regex \"a\" \"(\" { }", 1,
	    "invalid regex");
	/* a short regex that glibc would multiply into a huge automaton */
	assert_error("require \"regex\"; if header :regex \"a\" "
	    "\"(a{255}){255}\" { }", 1, "too many repetitions");
}

static void
test_sieve_error_limits(void **state)
{
	struct dyn { char *s; } d;
	size_t n = 0;

	(void)state;
	/* nesting deeper than SIEVE_MAX_NESTING */
	d.s = xmalloc(64 * 40 + 64);
	d.s[0] = '\0';
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(d.s + n, "if true {\n");
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(d.s + n, "}\n");
	assert_error(d.s, SIEVE_MAX_NESTING, "nesting too deep");
	free(d.s);
	/* not(not(not(...))) */
	d.s = xmalloc(10 * 100 + 64);
	n = (size_t)sprintf(d.s, "if ");
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(d.s + n, "not ");
	sprintf(d.s + n, "true { }");
	assert_error(d.s, 1, "nesting too deep");
	free(d.s);
	/* a script over SIEVE_MAX_SCRIPT */
	d.s = xmalloc(SIEVE_MAX_SCRIPT + 2);
	memset(d.s, ' ', SIEVE_MAX_SCRIPT + 1);
	d.s[SIEVE_MAX_SCRIPT + 1] = '\0';
	assert_error(d.s, 0, "script too large");
	free(d.s);
}

static void
test_sieve_strings_and_numbers(void **state)
{
	struct sieve_result res;

	(void)state;
	assert_folder("require \"fileinto\"; fileinto \"a\\\"b\\\\c\\d\";",
	    "a\"b\\cd");
	assert_folder("require \"fileinto\"; fileinto text:\n..x\n.\n;",
	    ".x\r\n");
	assert_folder("require [\"fileinto\", \"encoded-character\"]; "
	    "fileinto \"${hex:41 42}${unicode:e9}${hex:zz}\";",
	    "AB\xc3\xa9${hex:zz}");
	/* 1K = 1024: the message is over 100 bytes, under 1K */
	assert_int_equal(run("if allof(size :over 100, size :under 1K) "
	    "{ discard; }", &res), 0);
	assert_int_equal(res.nactions, 1);
	assert_int_equal(res.actions[0].type, SIEVE_ACT_DISCARD);
	assert_false(res.is_implicit_keep);
	sieve_result_deinit(&res);
}

static void
test_sieve_matches_wildcards(void **state)
{
	static const struct {
		const char *value, *key;
		bool is_match;
	} cases[] = {
		{ "", "", true }, { "", "*", true }, { "", "?", false },
		{ "abc", "*", true }, { "abc", "a*", true },
		{ "abc", "*c", true }, { "abc", "a?c", true },
		{ "abc", "a??c", false }, { "abc", "??", false },
		{ "abc", "???", true }, { "a*c", "a\\*c", true },
		{ "abc", "a\\*c", false }, { "a?c", "a\\?c", true },
		{ "a\\c", "a\\\\c", true }, { "ABC", "a*c", true },
		{ "aaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*b", true },
		{ "aaaaaaaaaaaaaaaaaaaa", "*a*a*a*a*a*a*b", false },
		{ "x\xc3\xa9y", "x?y", true },
		{ "mississippi", "*sip*", true },
		{ "mississippi", "m*iss*ppi", true },
		{ "mississippi", "m*x*", false },
	};
	struct sv_node n;

	(void)state;
	memset(&n, 0, sizeof(n));
	n.match = G_MATCHES;
	n.cmp = CMP_CASEMAP;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		unsigned steps = 0;
		const char *err = NULL;
		int m = sv_match(&n, cases[i].value, strlen(cases[i].value),
		    cases[i].key, strlen(cases[i].key), NULL, NULL, &steps,
		    &err);

		if (m != (int)cases[i].is_match)
			fail_msg("'%s' :matches '%s' gave %d", cases[i].value,
			    cases[i].key, m);
	}
	n.cmp = CMP_OCTET;
	{
		unsigned steps = 0;
		const char *err = NULL;

		assert_int_equal(sv_match(&n, "ABC", 3, "a*", 2, NULL, NULL,
		    &steps, &err), 0);
	}
}

static void
test_sieve_matches_captures(void **state)
{
	(void)state;
	/* RFC 5229 §3.2 */
	assert_folder("require [\"fileinto\", \"variables\"]; if header "
	    ":matches \"subject\" \"[*] *\" { fileinto \"${1}|${2}\"; }",
	    "acme-users|[fwd] version 1.0 is out");
	/* every wildcard is numbered; the leftmost '*' is shortest */
	assert_folder("require [\"fileinto\", \"variables\"]; if header "
	    ":matches \"subject\" \"*e*\" { fileinto \"${1}|${2}\"; }",
	    "[acm|-users] [fwd] version 1.0 is out");
	assert_folder("require [\"fileinto\", \"variables\"]; if header "
	    ":matches \"subject\" \"?ac*\" { fileinto \"${1}${2}\"; }",
	    "[me-users] [fwd] version 1.0 is out");
	/* a failed match leaves the variables of the last success */
	assert_folder("require [\"fileinto\", \"variables\"]; "
	    "if header :matches \"subject\" \"[*\" { } "
	    "if header :matches \"subject\" \"x*\" { } fileinto \"${1}\";",
	    "acme-users] [fwd] version 1.0 is out");
	/* a :regex key with a variable is compiled when it runs (fuzz:
	 * its compiled form was left uninitialised) */
	assert_folder("require [\"fileinto\", \"variables\", \"regex\"]; "
	    "set \"w\" \"[a-z]+\"; if header :regex \"subject\" "
	    "\"^\\\\[(${w})-\" { fileinto \"${1}\"; }", "acme");
	assert_folder("require [\"fileinto\", \"variables\", \"subaddress\"]; "
	    "if address :detail :matches \"from\" \"*\" { "
	    "fileinto \"${1}\"; }", "lists");
}

static void
test_sieve_variables_modifiers(void **state)
{
	(void)state;
	assert_folder("require [\"fileinto\", \"variables\"]; "
	    "set :upperfirst :lower \"b\" \"juMBlEd lETteRS\"; "
	    "fileinto \"${b}\";", "Jumbled letters");
	assert_folder("require [\"fileinto\", \"variables\"]; "
	    "set :length \"b\" \"Gr\xc3\xbc\xc3\x9f" "e\"; fileinto \"${b}\";",
	    "5");
	assert_folder("require [\"fileinto\", \"variables\"]; "
	    "set :quotewildcard \"b\" \"a*?\\\\\"; fileinto \"${b}\";",
	    "a\\*\\?\\\\");
	assert_folder("require [\"fileinto\", \"variables\"]; "
	    "set \"a\" \"x\"; fileinto \"${A}${nope}${1a}$\";", "x${1a}$");
}

static void
test_sieve_numeric_comparator(void **state)
{
	(void)state;
	assert_int_equal(sv_compare(CMP_NUMERIC, "42", 2, "042", 3), 0);
	assert_true(sv_compare(CMP_NUMERIC, "9", 1, "10", 2) < 0);
	assert_true(sv_compare(CMP_NUMERIC, "abc", 3, "99999", 5) > 0);
	assert_int_equal(sv_compare(CMP_NUMERIC, "abc", 3, "x", 1), 0);
	assert_true(sv_compare(CMP_CASEMAP, "ABC", 3, "abd", 3) < 0);
	assert_true(sv_compare(CMP_OCTET, "B", 1, "a", 1) < 0);
}

static void
test_sieve_runtime_failure_is_implicit_keep(void **state)
{
	struct sieve_result res;

	(void)state;
	assert_int_equal(run("redirect \"a@x.org\"; redirect \"b@x.org\"; "
	    "redirect \"c@x.org\"; redirect \"d@x.org\"; "
	    "redirect \"e@x.org\";", &res), -1);
	assert_int_equal(res.nactions, 0);
	assert_true(res.is_implicit_keep);
	assert_non_null(strstr(res.error, "redirect"));
	assert_int_equal(res.error_line, 1);
	sieve_result_deinit(&res);
	/* the same address twice is one redirect */
	assert_int_equal(run("redirect \"a@x.org\"; redirect \"a@x.org\"; "
	    "redirect \"c@x.org\"; redirect \"d@x.org\"; "
	    "redirect \"e@x.org\";", &res), 0);
	assert_int_equal(res.nactions, 4);
	sieve_result_deinit(&res);
	/* reject after fileinto */
	assert_int_equal(run("require [\"fileinto\", \"reject\"]; "
	    "fileinto \"A\"; reject \"no\";", &res), -1);
	assert_true(res.is_implicit_keep);
	sieve_result_deinit(&res);
}

static void
test_sieve_cpu_limit(void **state)
{
	struct sieve_result res;
	char *s = xmalloc(400000);
	size_t n;

	(void)state;
	/* many slow :matches: each 21x7 steps; the bound stops the run */
	n = (size_t)sprintf(s, "if anyof(");
	for (int i = 0; i < 5000; i++)
		n += (size_t)sprintf(s + n, "%sheader :matches \"subject\" "
		    "\"*a*a*a*a*a*a*a*a*a*zz\"", i ? "," : "");
	sprintf(s + n, ") { discard; }");
	assert_int_equal(run(s, &res), -1);
	assert_non_null(strstr(res.error, "CPU"));
	assert_true(res.is_implicit_keep);
	assert_true(res.steps > SIEVE_MAX_STEPS);
	sieve_result_deinit(&res);
	free(s);
}

static void
test_sieve_actions_of_the_api(void **state)
{
	struct sieve_result res;
	const struct sieve_action *a;

	(void)state;
	assert_int_equal(run("require [\"fileinto\", \"imap4flags\", "
	    "\"mailbox\", \"copy\", \"vacation\", \"editheader\", "
	    "\"duplicate\"];\n"
	    "if duplicate { discard; }\n"
	    "fileinto :create :flags [\"\\\\Seen\", \"work\"] \"Work\";\n"
	    "redirect :copy \"archive@example.net\";\n"
	    "vacation :days 2 :subject \"away\" :addresses [\"b@x.org\"] "
	    "\"gone\";\n"
	    "addheader \"X-Filtered\" \"yes\";\n"
	    "deleteheader \"message-id\";\n", &res), 0);
	assert_int_equal(res.nactions, 4);
	a = &res.actions[0];
	assert_int_equal(a->type, SIEVE_ACT_TRACK_DUPLICATE);
	assert_string_equal(a->dup_id, "<m1@example.org>");
	a = &res.actions[1];
	assert_int_equal(a->type, SIEVE_ACT_FILEINTO);
	assert_string_equal(a->mailbox, "Work");
	assert_true(a->is_create);
	assert_string_equal(a->flags[0], "\\Seen");
	assert_string_equal(a->flags[1], "work");
	assert_null(a->flags[2]);
	assert_int_equal(a->line, 3);
	a = &res.actions[2];
	assert_int_equal(a->type, SIEVE_ACT_REDIRECT);
	assert_string_equal(a->address, "archive@example.net");
	assert_true(a->is_copy);
	a = &res.actions[3];
	assert_int_equal(a->type, SIEVE_ACT_VACATION);
	assert_int_equal(a->vacation.seconds, 2 * 86400);
	assert_string_equal(a->vacation.subject, "away");
	assert_string_equal(a->vacation.addresses[0], "b@x.org");
	assert_string_equal(a->vacation.reason, "gone");
	assert_false(res.is_implicit_keep);
	assert_int_equal(res.nedits, 2);
	assert_non_null(res.header);
	assert_true(strncmp(res.header, "X-Filtered: yes\r\n", 17) == 0);
	assert_null(strstr(res.header, "Message-ID"));
	sieve_result_deinit(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sieve_error_unknown_command_names_line),
		cmocka_unit_test(test_sieve_error_syntax),
		cmocka_unit_test(test_sieve_error_extension_not_required),
		cmocka_unit_test(test_sieve_error_limits),
		cmocka_unit_test(test_sieve_strings_and_numbers),
		cmocka_unit_test(test_sieve_matches_wildcards),
		cmocka_unit_test(test_sieve_matches_captures),
		cmocka_unit_test(test_sieve_variables_modifiers),
		cmocka_unit_test(test_sieve_numeric_comparator),
		cmocka_unit_test(test_sieve_runtime_failure_is_implicit_keep),
		cmocka_unit_test(test_sieve_cpu_limit),
		cmocka_unit_test(test_sieve_actions_of_the_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
