/*
 * Unit tests for imap_parser: every token kind, commands fed one byte at a
 * time, literals ({n}, {n+}, ~{n}) split across reads, literals over the
 * limits (refused without being read; fatal for {n+}), quoted escapes and
 * UTF-8, NUL bytes, BAD syntax, depth and count limits, plain lines for
 * AUTHENTICATE and IDLE, sequence sets and FETCH sections.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "imap/imap_parser.h"
#include "lib/buf.h"
#include "lib/parse.h"
#include "lib/util.h"

#define LINE_MAX_TEST 1024
#define LITERAL_MAX_TEST (1024 * 1024)

struct h {
	struct buf b;
	struct imap_parser p;
	size_t conts;		/* continuation requests seen */
};

static void
h_init(struct h *h, size_t line_max, size_t literal_max)
{
	buf_init(&h->b, line_max + 4096);
	imap_parser_init(&h->p, line_max, literal_max);
	h->conts = 0;
}

static void
h_deinit(struct h *h)
{
	imap_parser_deinit(&h->p);
	buf_deinit(&h->b);
}

static void
h_put_n(struct h *h, const char *s, size_t n)
{
	assert_int_equal(buf_append(&h->b, s, n), 0);
}

static void
h_put(struct h *h, const char *s)
{
	h_put_n(h, s, strlen(s));
}

/* One feed, checking what every answer promises. */
static enum parse_rc
h_feed(struct h *h, struct imap_cmd **cmd, bool *cont)
{
	enum parse_rc rc;

	*cmd = (struct imap_cmd *)1;
	*cont = true;
	rc = imap_parser_feed(&h->p, &h->b, cmd, cont);
	assert_true(h->p.off <= h->b.len);
	if (rc == PARSE_DONE) {
		assert_non_null(*cmd);
		assert_false(*cont);
		assert_non_null((*cmd)->tag);
		assert_non_null((*cmd)->name);
	} else {
		assert_null(*cmd);
	}
	if (rc == PARSE_ERROR) {
		assert_non_null(h->p.error_text);
		assert_false(*cont);
	} else {
		assert_false(h->p.is_fatal);
	}
	if (*cont)
		h->conts++;
	return rc;
}

/* Feeds until something other than PARSE_MORE, answering continuation
 * requests as a session does; returns PARSE_MORE if the input ran out. */
static enum parse_rc
h_next(struct h *h, struct imap_cmd **cmd)
{
	for (;;) {
		bool cont;
		enum parse_rc rc = h_feed(h, cmd, &cont);

		if (rc == PARSE_MORE && cont)
			continue;
		imap_parser_compact(&h->p, &h->b);
		return rc;
	}
}

static struct imap_cmd *
h_parse(struct h *h, const char *text)
{
	struct imap_cmd *cmd;

	h_put(h, text);
	assert_int_equal(h_next(h, &cmd), PARSE_DONE);
	return cmd;
}

static void
h_expect_error(struct h *h, const char *tag, const char *text_part,
    bool is_fatal)
{
	struct imap_cmd *cmd;

	assert_int_equal(h_next(h, &cmd), PARSE_ERROR);
	if (tag == NULL)
		assert_null(h->p.error_tag);
	else
		assert_string_equal(h->p.error_tag, tag);
	if (strstr(h->p.error_text, text_part) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", h->p.error_text,
		    text_part);
	assert_int_equal(h->p.is_fatal, is_fatal);
}

static void
dump_arg(FILE *f, const struct imap_arg *a)
{
	size_t i;

	switch (a->kind) {
	case IMAP_ARG_ATOM:
		fputs(a->str, f);
		break;
	case IMAP_ARG_NIL:
		fputs("NIL", f);
		break;
	case IMAP_ARG_QUOTED:
		fprintf(f, "\"%s\"", a->str);
		break;
	case IMAP_ARG_LITERAL:
	case IMAP_ARG_LITERAL8:
		fprintf(f, "%s{%zu}", a->kind == IMAP_ARG_LITERAL8 ? "~" : "",
		    a->len);
		for (i = 0; i < a->len; i++)
			if (a->str[i] == '\0')
				fputs("\\0", f);
			else
				fputc(a->str[i], f);
		assert_int_equal(a->str[a->len], '\0');
		break;
	case IMAP_ARG_LIST:
		fputc('(', f);
		for (i = 0; i < a->len; i++) {
			if (i > 0)
				fputc(' ', f);
			dump_arg(f, &a->list[i]);
		}
		fputc(')', f);
		break;
	}
}

/* "TAG [UID ]NAME arg arg ..." in a canonical form. */
static char *
dump(const struct imap_cmd *cmd)
{
	char *s = NULL;
	size_t n = 0, i;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	fprintf(f, "%s %s%s", cmd->tag, cmd->is_uid ? "UID " : "", cmd->name);
	for (i = 0; i < cmd->nargs; i++) {
		fputc(' ', f);
		dump_arg(f, &cmd->args[i]);
	}
	fclose(f);
	return s;
}

static void
assert_cmd(struct imap_cmd **cmd, const char *want)
{
	char *got = dump(*cmd);

	assert_string_equal(got, want);
	free(got);
	imap_cmd_free(cmd);
	assert_null(*cmd);
}

static void
assert_parses(struct h *h, const char *text, const char *want)
{
	struct imap_cmd *cmd = h_parse(h, text);

	assert_cmd(&cmd, want);
}

/* ---- Commands and tokens ---------------------------------------------- */

static void
test_imap_parser_simple_command(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "a1 noop\r\n");
	assert_string_equal(cmd->tag, "a1");
	assert_string_equal(cmd->name, "NOOP");
	assert_false(cmd->is_uid);
	assert_int_equal(cmd->nargs, 0);
	assert_null(cmd->args);
	imap_cmd_free(&cmd);
	/* A bare LF ends a line too; tags may hold "]". */
	assert_parses(&h, "x]1 Capability\n", "x]1 CAPABILITY");
	assert_int_equal(h.b.len, 0);
	h_deinit(&h);
}

/* imap_cmd_shrink: an IDLE keeps its tag and name in a small block; a
 * command with arguments stays as it was. The buffer an idle session
 * keeps is trimmed after a long line (buf_trim). */
static void
test_imap_parser_shrink_and_trim(void **state)
{
	struct h h;
	struct imap_cmd *cmd, *was;
	char line[1000];

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "idle.7 idle\r\n");
	was = cmd;
	assert_true(cmd->mem_size >= 1024);
	imap_cmd_shrink(&cmd);
	assert_ptr_not_equal(cmd, was);
	assert_true(cmd->mem_size < 128);
	assert_string_equal(cmd->tag, "idle.7");
	assert_string_equal(cmd->name, "IDLE");
	assert_false(cmd->is_uid);
	assert_int_equal(cmd->nargs, 0);
	imap_cmd_free(&cmd);
	cmd = h_parse(&h, "a2 SELECT INBOX\r\n");
	was = cmd;
	imap_cmd_shrink(&cmd);
	assert_ptr_equal(cmd, was);
	assert_cmd(&cmd, "a2 SELECT INBOX");
	/* Two lines of 1,000 bytes grew the buffer past 1 KiB; once they
	 * are read the buffer gives that back. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "a3 NOOP ", 8);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	h_put_n(&h, line, sizeof(line) - 1);
	h_put_n(&h, line + sizeof(line) - 1, 1);
	memcpy(line, "a4", 2);
	h_put_n(&h, line, sizeof(line));
	assert_true(h.b.size > 1024);
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	imap_cmd_free(&cmd);
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	imap_cmd_free(&cmd);
	assert_int_equal(h.b.len, 0);
	assert_int_equal(h.b.size, 0);
	assert_null(h.b.data);
	h_deinit(&h);
}

static void
test_imap_parser_uid_command(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "A2 uid fetch 1:*,$ (FLAGS)\r\n");
	assert_true(cmd->is_uid);
	assert_string_equal(cmd->name, "FETCH");
	assert_int_equal(cmd->nargs, 2);
	assert_cmd(&cmd, "A2 UID FETCH 1:*,$ (FLAGS)");
	h_deinit(&h);
}

static void
test_imap_parser_every_token_kind(void **state)
{
	static const char text[] = "T1 X atom 42 \"quo ted\" NIL nil "
	    "(a (b ()) \"\") \\Seen BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]"
	    "<0.100> 1:*,5 INBOX.* {3+}\r\nabc ~{3+}\r\nf\0g {0+}\r\n\r\n";
	struct h h;
	struct imap_cmd *cmd;
	const struct imap_arg *a;
	const char *str;
	size_t len;
	uint32_t n32;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put_n(&h, text, sizeof(text) - 1);
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_int_equal(h.conts, 0);
	assert_int_equal(cmd->nargs, 13);
	a = cmd->args;
	assert_int_equal(a[0].kind, IMAP_ARG_ATOM);
	assert_string_equal(a[0].str, "atom");
	assert_int_equal(a[1].kind, IMAP_ARG_ATOM);
	assert_true(imap_arg_number(&a[1], &n32));
	assert_int_equal(n32, 42);
	assert_int_equal(a[2].kind, IMAP_ARG_QUOTED);
	assert_string_equal(a[2].str, "quo ted");
	assert_int_equal(a[2].len, 7);
	assert_int_equal(a[3].kind, IMAP_ARG_NIL);
	assert_int_equal(a[4].kind, IMAP_ARG_NIL);
	assert_true(imap_arg_nstring(&a[4], &str, &len));
	assert_null(str);
	/* An atom NIL is still a mailbox name "nil" for an astring. */
	assert_true(imap_arg_astring(&a[4], &str, &len));
	assert_string_equal(str, "nil");
	assert_int_equal(a[5].kind, IMAP_ARG_LIST);
	assert_int_equal(a[5].len, 3);
	assert_int_equal(a[5].list[1].kind, IMAP_ARG_LIST);
	assert_int_equal(a[5].list[1].list[1].kind, IMAP_ARG_LIST);
	assert_int_equal(a[5].list[1].list[1].len, 0);
	assert_int_equal(a[5].list[2].kind, IMAP_ARG_QUOTED);
	assert_int_equal(a[5].list[2].len, 0);
	assert_int_equal(a[6].kind, IMAP_ARG_ATOM);
	assert_string_equal(a[6].str, "\\Seen");
	assert_false(imap_arg_astring(&a[6], &str, &len));
	assert_int_equal(a[7].kind, IMAP_ARG_ATOM);
	assert_string_equal(a[7].str,
	    "BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]<0.100>");
	assert_string_equal(a[8].str, "1:*,5");
	assert_string_equal(a[9].str, "INBOX.*");
	assert_false(imap_arg_astring(&a[9], &str, &len));
	assert_int_equal(a[10].kind, IMAP_ARG_LITERAL);
	assert_true(imap_arg_astring(&a[10], &str, &len));
	assert_int_equal(len, 3);
	assert_memory_equal(str, "abc", 3);
	assert_int_equal(a[11].kind, IMAP_ARG_LITERAL8);
	assert_int_equal(a[11].len, 3);
	assert_memory_equal(a[11].str, "f\0g", 3);
	assert_false(imap_arg_astring(&a[11], &str, &len));
	assert_false(imap_arg_string(&a[11], &str, &len));
	assert_int_equal(a[12].kind, IMAP_ARG_LITERAL);
	assert_int_equal(a[12].len, 0);
	assert_string_equal(a[12].str, "");
	imap_cmd_free(&cmd);
	h_deinit(&h);
}

static void
test_imap_parser_numbers_checked_for_overflow(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	uint32_t n32 = 0;
	uint64_t n64 = 0;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "N X 4294967295 4294967296 9223372036854775807 "
	    "9223372036854775808 0 12a \"7\"\r\n");
	assert_int_equal(cmd->nargs, 7);
	assert_true(imap_arg_number(&cmd->args[0], &n32));
	assert_int_equal(n32, UINT32_MAX);
	assert_false(imap_arg_number(&cmd->args[1], &n32));
	assert_true(imap_arg_number64(&cmd->args[1], &n64));
	assert_int_equal(n64, 4294967296u);
	assert_true(imap_arg_number64(&cmd->args[2], &n64));
	assert_int_equal(n64, INT64_MAX);
	assert_false(imap_arg_number64(&cmd->args[3], &n64));
	assert_true(imap_arg_number(&cmd->args[4], &n32));
	assert_int_equal(n32, 0);
	assert_false(imap_arg_number(&cmd->args[5], &n32));
	assert_false(imap_arg_number(&cmd->args[6], &n32));
	assert_true(is_imap_arg_atom(&cmd->args[5], "12A"));
	assert_false(is_imap_arg_atom(&cmd->args[5], "12"));
	imap_cmd_free(&cmd);
	h_deinit(&h);
}

static void
test_imap_parser_spaces_forgiven_between_arguments(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	assert_parses(&h, "S1 STORE 1  +FLAGS ( \\Seen  \\Draft ) \r\n",
	    "S1 STORE 1 +FLAGS (\\Seen \\Draft)");
	h_deinit(&h);
}

static void
test_imap_parser_pipelined_commands(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put(&h, "P1 NOOP\r\nP2 SELECT \"a b\"\r\nP3 LOGOUT\r\nP4 ");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, "P1 NOOP");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, "P2 SELECT \"a b\"");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, "P3 LOGOUT");
	assert_int_equal(h_next(&h, &cmd), PARSE_MORE);
	/* The partial line stays in the buf across compaction. */
	assert_int_equal(h.b.len, 3);
	assert_parses(&h, "NOOP\r\n", "P4 NOOP");
	h_deinit(&h);
}

static void
test_imap_parser_empty_lines_ignored(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	assert_parses(&h, "\r\n\n\r\nE1 NOOP\r\n", "E1 NOOP");
	h_deinit(&h);
}

/* ---- Feeding piecemeal ------------------------------------------------ */

/* Feeds text one byte at a time, compacting after each byte as a session
 * does after each read: PARSE_MORE until the last byte, a continuation
 * request exactly when a line ending in "{n}" ends, and the same commands
 * as when the text comes in one piece. */
static void
assert_bytewise(const char *text, size_t n, const char *want)
{
	struct h h;
	struct imap_cmd *cmd;
	size_t i;
	bool cont;

	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	for (i = 0; i < n; i++) {
		enum parse_rc rc;

		h_put_n(&h, text + i, 1);
		rc = h_feed(&h, &cmd, &cont);
		if (i + 1 < n) {
			assert_int_equal(rc, PARSE_MORE);
			if (cont) {
				/* "{n}" and CRLF: the line just ended. */
				assert_true(i >= 3);
				assert_memory_equal(text + i - 2, "}\r\n", 3);
				assert_int_equal(h_feed(&h, &cmd, &cont),
				    PARSE_MORE);
				assert_false(cont);
			}
		} else {
			assert_int_equal(rc, PARSE_DONE);
		}
		imap_parser_compact(&h.p, &h.b);
	}
	assert_cmd(&cmd, want);
	assert_int_equal(h.b.len, 0);
	h_deinit(&h);

	/* All at once: the same command. */
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put_n(&h, text, n);
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, want);
	h_deinit(&h);
}

static void
test_imap_parser_command_one_byte_at_a_time(void **state)
{
	static const char append[] =
	    "A4 APPEND INBOX (\\Seen) {5}\r\nhello {3+}\r\nabc\r\n";
	static const char fetch[] = "F1 UID FETCH 1:* (FLAGS "
	    "BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>)\r\n";
	static const char login[] = "L1 LOGIN {4}\r\nuser \"pa\\\"ss\"\r\n";
	static const char bin[] = "B1 APPEND x ~{2}\r\n\0\r\n";
	struct h h;
	struct imap_cmd *cmd;
	size_t i;
	bool cont;

	(void)state;
	assert_bytewise(append, sizeof(append) - 1,
	    "A4 APPEND INBOX (\\Seen) {5}hello {3}abc");
	assert_bytewise(fetch, sizeof(fetch) - 1, "F1 UID FETCH 1:* (FLAGS "
	    "BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>)");
	assert_bytewise(login, sizeof(login) - 1,
	    "L1 LOGIN {4}user \"pa\"ss\"");
	assert_bytewise(bin, sizeof(bin) - 1, "B1 APPEND x ~{2}\\0\r");

	/* Exactly one continuation, on the LF after "{5}". */
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	for (i = 0; i < sizeof(append) - 1; i++) {
		h_put_n(&h, append + i, 1);
		h_feed(&h, &cmd, &cont);
		if (cont)
			assert_int_equal(i, strstr(append, "{5}") + 4 - append);
		imap_cmd_free(&cmd);
	}
	assert_int_equal(h.conts, 1);
	h_deinit(&h);
}

static void
test_imap_parser_literal_split_across_reads(void **state)
{
	enum { SIZE = 300000, CHUNK = 777 };
	struct h h;
	struct imap_cmd *cmd = NULL;
	char *data = malloc(SIZE);
	size_t i;
	bool cont;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < SIZE; i++)
		data[i] = (char)('a' + i % 26);
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put(&h, "A5 APPEND INBOX {300000}\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_true(cont);
	imap_parser_compact(&h.p, &h.b);
	for (i = 0; i < SIZE; i += CHUNK) {
		h_put_n(&h, data + i, i + CHUNK <= SIZE ? CHUNK : SIZE - i);
		assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
		assert_false(cont);
		imap_parser_compact(&h.p, &h.b);
		/* Taken out of the buf as it comes. */
		assert_int_equal(h.b.len, 0);
	}
	h_put(&h, "\r");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	h_put(&h, "\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_int_equal(cmd->nargs, 2);
	assert_int_equal(cmd->args[1].kind, IMAP_ARG_LITERAL);
	assert_int_equal(cmd->args[1].len, SIZE);
	assert_memory_equal(cmd->args[1].str, data, SIZE);
	assert_int_equal(cmd->args[1].str[SIZE], '\0');
	/* The literal and a little more, not a multiple of it. */
	assert_true(cmd->mem_size >= SIZE);
	assert_true(cmd->mem_size < SIZE + 8192);
	imap_cmd_free(&cmd);
	h_deinit(&h);
	free(data);
}

/* spool_open for the tests: a memfd for APPEND, counting calls;
 * spool_fail makes it fail. */
static int spool_calls;
static bool spool_fail;

static int
spool_open_test(void *arg, const char *name, int *errno_out)
{
	(void)arg;
	spool_calls++;
	if (strcmp(name, "APPEND") != 0)
		return -1;
	if (spool_fail) {
		*errno_out = ENOSPC;
		return -1;
	}
	return memfd_create("spool", MFD_CLOEXEC);
}

static void
h_spool(struct h *h, size_t min)
{
	h->p.spool_min = min;
	h->p.spool_open = spool_open_test;
	spool_calls = 0;
	spool_fail = false;
}

/* Is fd an open descriptor? */
static bool
is_fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void
test_imap_parser_large_literal_spooled_split_across_reads(void **state)
{
	enum { SIZE = 300000, CHUNK = 777 };
	struct h h;
	struct imap_cmd *cmd = NULL;
	char *data = malloc(SIZE), *back = malloc(SIZE);
	size_t i;
	bool cont;
	int fd;

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < SIZE; i++)
		data[i] = (char)('a' + i % 26);
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_spool(&h, 1000);
	h_put(&h, "A5 APPEND INBOX (\\Seen) {5}\r\nsmall {300000}\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_true(cont);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_true(cont);
	/* Asked once the large literal was announced, before the "+". */
	assert_int_equal(spool_calls, 1);
	imap_parser_compact(&h.p, &h.b);
	for (i = 0; i < SIZE; i += CHUNK) {
		h_put_n(&h, data + i, i + CHUNK <= SIZE ? CHUNK : SIZE - i);
		assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
		imap_parser_compact(&h.p, &h.b);
		assert_int_equal(h.b.len, 0);
	}
	h_put(&h, "\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_int_equal(cmd->nargs, 4);
	/* The small literal below spool_min stays in memory. */
	assert_false(cmd->args[2].is_spooled);
	assert_string_equal(cmd->args[2].str, "small");
	assert_true(cmd->args[3].is_spooled);
	assert_int_equal(cmd->args[3].kind, IMAP_ARG_LITERAL);
	assert_int_equal(cmd->args[3].len, SIZE);
	assert_string_equal(cmd->args[3].str, "");
	fd = cmd->args[3].fd;
	assert_int_equal(pread(fd, back, SIZE, 0), SIZE);
	assert_memory_equal(back, data, SIZE);
	/* Not in memory: the command holds a few kilobytes. */
	assert_true(cmd->mem_size < 16384);
	/* The string readers refuse it. */
	{
		const char *str;
		size_t len;

		assert_false(imap_arg_astring(&cmd->args[3], &str, &len));
		assert_false(imap_arg_nstring(&cmd->args[3], &str, &len));
	}
	imap_cmd_free(&cmd);
	assert_false(is_fd_open(fd));
	h_deinit(&h);
	free(data);
	free(back);
}

/* A MULTIAPPEND's large literals share the command's one spool file,
 * one after the other: one descriptor per command, not one per literal. */
static void
test_imap_parser_spool_one_file_per_command(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char a[2000], b[3000], back[3000];
	bool cont;
	int fd;

	(void)state;
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_spool(&h, 1000);
	h_put(&h, "A6 APPEND INBOX {2000+}\r\n");
	h_put_n(&h, a, sizeof(a));
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	imap_parser_compact(&h.p, &h.b);
	h_put(&h, " {5+}\r\nsmall {3000+}\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	imap_parser_compact(&h.p, &h.b);
	h_put_n(&h, b, sizeof(b));
	h_put(&h, "\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_int_equal(cmd->nargs, 4);
	assert_int_equal(spool_calls, 1);
	assert_true(cmd->args[1].is_spooled);
	assert_true(cmd->args[3].is_spooled);
	fd = cmd->args[1].fd;
	assert_true(fd >= 0);
	assert_int_equal(cmd->args[3].fd, fd);
	assert_int_equal(cmd->args[1].spool_off, 0);
	assert_int_equal(cmd->args[1].len, sizeof(a));
	assert_int_equal(cmd->args[3].spool_off, sizeof(a));
	assert_int_equal(cmd->args[3].len, sizeof(b));
	assert_int_equal(pread(fd, back, sizeof(a), 0), sizeof(a));
	assert_memory_equal(back, a, sizeof(a));
	assert_int_equal(pread(fd, back, sizeof(b), sizeof(a)), sizeof(b));
	assert_memory_equal(back, b, sizeof(b));
	imap_cmd_free(&cmd);
	assert_false(is_fd_open(fd));
	/* The next command opens a file of its own. */
	imap_parser_compact(&h.p, &h.b);
	h_put(&h, "A7 APPEND INBOX {2000+}\r\n");
	h_put_n(&h, a, sizeof(a));
	h_put(&h, "\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_int_equal(spool_calls, 2);
	assert_int_equal(cmd->args[1].spool_off, 0);
	assert_int_equal(pread(cmd->args[1].fd, back, sizeof(a), 0),
	    sizeof(a));
	assert_memory_equal(back, a, sizeof(a));
	imap_cmd_free(&cmd);
	h_deinit(&h);
}

/* Literals under spool_min each still go to the file once the command's
 * literals in memory would pass spool_min: a MULTIAPPEND of many literals
 * just under it must not add up in memory (R1 of the NOTIFY review). */
static void
test_imap_parser_spool_when_memory_would_pass_spool_min(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char a[600];
	bool cont;

	(void)state;
	memset(a, 'a', sizeof(a));
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_spool(&h, 1000);
	h_put(&h, "A1 APPEND INBOX {600+}\r\n");
	h_put_n(&h, a, sizeof(a));
	h_put(&h, " {600+}\r\n");
	h_put_n(&h, a, sizeof(a));
	h_put(&h, " {600+}\r\n");
	h_put_n(&h, a, sizeof(a));
	h_put(&h, "\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_int_equal(cmd->nargs, 4);
	assert_false(cmd->args[1].is_spooled);
	assert_int_equal(cmd->args[1].len, sizeof(a));
	assert_true(cmd->args[2].is_spooled);
	assert_true(cmd->args[3].is_spooled);
	assert_int_equal(cmd->args[3].fd, cmd->args[2].fd);
	assert_int_equal(cmd->args[3].spool_off, sizeof(a));
	assert_int_equal(spool_calls, 1);
	imap_cmd_free(&cmd);
	h_deinit(&h);
}

static int
refuse_over_100(void *arg, const char *name, uint64_t n, uint64_t total)
{
	(void)arg;
	(void)name;
	return n + total > 100 ? IMAP_LITERAL_REFUSE : 0;
}

/* literal_check's IMAP_LITERAL_REFUSE: a {n} is refused before the
 * continuation, a {n+} is read and dropped, and the next command is read
 * as usual. */
static void
test_imap_parser_literal_check_refuses(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char a[200];
	bool cont;

	(void)state;
	memset(a, 'a', sizeof(a));
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h.p.literal_check = refuse_over_100;
	h_put(&h, "A1 SEARCH TEXT {200}\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_ERROR);
	assert_false(cont);
	assert_string_equal(h.p.error_tag, "A1");
	assert_non_null(strstr(h.p.error_text, "[TOOBIG]"));
	assert_false(h.p.is_fatal);
	h_put(&h, "A2 SEARCH TEXT {200+}\r\n");
	h_put_n(&h, a, sizeof(a));
	h_put(&h, "\r\nA3 SEARCH TEXT {50+}\r\n");
	h_put_n(&h, a, 50);
	h_put(&h, "\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_ERROR);
	assert_string_equal(h.p.error_tag, "A2");
	assert_false(h.p.is_fatal);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_string_equal(cmd->tag, "A3");
	assert_int_equal(cmd->args[1].len, 50);
	imap_cmd_free(&cmd);
	h_deinit(&h);
}

static void
test_imap_parser_spool_only_where_the_session_wants(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char line[64];
	char *big = malloc(5000);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 5000);
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_spool(&h, 1000);
	h_put(&h, "B1 SEARCH TEXT {5000}\r\n");
	h_put_n(&h, big, 5000);
	h_put(&h, "\r\n");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_int_equal(spool_calls, 1);
	assert_false(cmd->args[1].is_spooled);
	assert_int_equal(cmd->args[1].len, 5000);
	imap_cmd_free(&cmd);
	/* A spool that cannot be had: the bytes are read and dropped (not
	 * kept in memory), and the argument says why, for a NO. */
	spool_fail = true;
	snprintf(line, sizeof(line), "B2 APPEND INBOX {5000}\r\n");
	h_put(&h, line);
	h_put_n(&h, big, 5000);
	h_put(&h, "\r\nB3 NOOP\r\n");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_string_equal(cmd->tag, "B2");
	assert_true(cmd->args[1].is_spooled);
	assert_int_equal(cmd->args[1].fd, -1);
	assert_int_equal(cmd->args[1].spool_errno, ENOSPC);
	assert_int_equal(cmd->args[1].len, 5000);
	assert_true(cmd->mem_size < 8192);
	imap_cmd_free(&cmd);
	cmd = h_parse(&h, "");
	assert_string_equal(cmd->tag, "B3");
	imap_cmd_free(&cmd);
	h_deinit(&h);
	free(big);
}

static void
test_imap_parser_spool_closed_when_command_dropped(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char *big = malloc(3000);
	bool cont;
	int fd;

	(void)state;
	assert_non_null(big);
	memset(big, 'y', 3000);
	big[2000] = '\0';
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_spool(&h, 1000);
	/* A NUL in a spooled plain literal: refused, the rest dropped, the
	 * file closed. */
	h_put(&h, "C1 APPEND INBOX {3000+}\r\n");
	h_put_n(&h, big, 1500);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	fd = h.p.lit_fd;
	assert_true(fd >= 0);
	h_put_n(&h, big + 1500, 1500);
	h_put(&h, "\r\n");
	h_expect_error(&h, "C1", "NUL", false);
	assert_false(is_fd_open(fd));
	/* A connection gone mid-literal: deinit closes the file. */
	h_put(&h, "C2 APPEND INBOX {3000+}\r\n");
	h_put_n(&h, big, 100);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	fd = h.p.lit_fd;
	assert_true(fd >= 0);
	h_deinit(&h);
	assert_false(is_fd_open(fd));
	free(big);
}

static void
test_imap_parser_sync_literal_stops_for_continuation(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	bool cont;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	/* A client that did not wait: the parser still stops, so that "+"
	 * goes out before the command's reply. */
	h_put(&h, "C1 LOGIN {1}\r\nu {0}\r\n\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_true(cont);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_true(cont);
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_cmd(&cmd, "C1 LOGIN {1}u {0}");
	h_deinit(&h);
}

static void
test_imap_parser_literal_plus_needs_no_continuation(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	bool cont;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put(&h, "C2 LOGIN {4+}\r\nuser {6+}\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_MORE);
	assert_false(cont);
	h_put(&h, "secret\r\n");
	assert_int_equal(h_feed(&h, &cmd, &cont), PARSE_DONE);
	assert_cmd(&cmd, "C2 LOGIN {4}user {6}secret");
	h_deinit(&h);
}

/* ---- Limits ----------------------------------------------------------- */

static void
test_imap_parser_sync_literal_too_big_refused_unread(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, 1024);
	h_put(&h, "A1 APPEND INBOX {1025}\r\n");
	h_expect_error(&h, "A1", "[TOOBIG]", false);
	assert_int_equal(h.conts, 0);
	assert_null(h.p.cmd);
	/* Without "+" the client sends no data: the next line is the next
	 * command. */
	assert_parses(&h, "A2 NOOP\r\n", "A2 NOOP");
	/* The same far beyond any size, and at the limit exactly. */
	h_put(&h, "A3 APPEND INBOX {99999999999999999999999}\r\n");
	h_expect_error(&h, "A3", "[TOOBIG]", false);
	h_put(&h, "A4 APPEND INBOX {1024}\r\n");
	assert_int_equal(h_next(&h, &cmd), PARSE_MORE);
	assert_int_equal(h.conts, 1);
	h_deinit(&h);
}

static void
test_imap_parser_nonsync_literal_too_big_is_fatal(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	bool cont;

	(void)state;
	h_init(&h, LINE_MAX_TEST, 1024);
	h_put(&h, "A1 APPEND INBOX {1025+}\r\nB1 NOOP\r\n");
	h_expect_error(&h, "A1", "[TOOBIG] Literal too large", true);
	/* Nothing more is parsed: the session closes. */
	assert_int_equal(imap_parser_feed(&h.p, &h.b, &cmd, &cont),
	    PARSE_ERROR);
	assert_true(h.p.is_fatal);
	assert_null(cmd);
	h_deinit(&h);
}

static void
test_imap_parser_literal_minus_limits_only_nonsync(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h.p.literal_plus_max = IMAP_LITERAL_MINUS_MAX;
	h_put(&h, "A1 APPEND INBOX {4097}\r\n");
	assert_int_equal(h_next(&h, &cmd), PARSE_MORE);
	assert_int_equal(h.conts, 1);
	imap_parser_reset(&h.p);
	buf_clear(&h.b);
	h_put(&h, "A2 APPEND INBOX {4097+}\r\n");
	h_expect_error(&h, "A2", "[TOOBIG]", true);
	h_deinit(&h);
}

static void
test_imap_parser_literals_of_a_command_share_the_limit(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, LINE_MAX_TEST, 1024);
	h_put(&h, "A1 X {600+}\r\n");
	for (int i = 0; i < 600; i++)
		h_put(&h, "x");
	h_put(&h, " {500}\r\n");
	h_expect_error(&h, "A1", "[TOOBIG]", false);
	assert_parses(&h, "A2 NOOP\r\n", "A2 NOOP");
	h_deinit(&h);
}

static void
test_imap_parser_too_many_literals(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h.p.literals_max = 2;
	cmd = h_parse(&h, "A1 X {1+}\r\na {1+}\r\nb\r\n");
	assert_cmd(&cmd, "A1 X {1}a {1}b");
	/* The third, synchronizing: refused before "+". */
	h_put(&h, "A2 X {1+}\r\na {1+}\r\nb {1}\r\n");
	h_expect_error(&h, "A2", "[LIMIT]", false);
	assert_int_equal(h.conts, 0);
	assert_parses(&h, "A3 NOOP\r\n", "A3 NOOP");
	/* The third, non-synchronizing: its data is dropped unread. */
	h_put(&h, "A4 X {1+}\r\na {1+}\r\nb {9+}\r\nB1 NOOP\r\n\r\n");
	h_expect_error(&h, "A4", "[LIMIT]", false);
	assert_parses(&h, "A5 NOOP\r\n", "A5 NOOP");
	h_deinit(&h);
}

static void
test_imap_parser_refused_command_drops_nonsync_literals(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	/* RFC 7888 §4: the client sends {n+} data even when the command is
	 * bad; were it read as commands, "B1 DELETE INBOX" would run. */
	h_put(&h, "A1 X ) {17+}\r\nB1 DELETE INBOX\r\n {4+}\r\nC1 x\r\n");
	h_expect_error(&h, "A1", "Unexpected )", false);
	assert_parses(&h, "A2 NOOP\r\n", "A2 NOOP");
	/* A {n} after the error gets no "+", so no data follows it. */
	h_put(&h, "A3 X ) {5}\r\nA4 NOOP\r\n");
	h_expect_error(&h, "A3", "Unexpected )", false);
	assert_parses(&h, "", "A4 NOOP");
	assert_int_equal(h.conts, 0);
	/* A dropped {n+} beyond literal_plus_max: close. */
	h_put(&h, "A5 X ) {2000000+}\r\n");
	h_expect_error(&h, "A5", "Unexpected )", false);
	h_expect_error(&h, NULL, "[TOOBIG]", true);
	h_deinit(&h);
}

static void
test_imap_parser_depth_limit(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char line[512];
	size_t n;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	n = (size_t)snprintf(line, sizeof(line), "D1 X ");
	for (int i = 0; i < IMAP_PARSER_DEPTH_MAX; i++)
		line[n++] = '(';
	for (int i = 0; i < IMAP_PARSER_DEPTH_MAX; i++)
		line[n++] = ')';
	memcpy(line + n, "\r\n", 3);
	cmd = h_parse(&h, line);
	assert_int_equal(cmd->nargs, 1);
	imap_cmd_free(&cmd);

	n = (size_t)snprintf(line, sizeof(line), "D2 X ");
	for (int i = 0; i < IMAP_PARSER_DEPTH_MAX + 1; i++)
		line[n++] = '(';
	for (int i = 0; i < IMAP_PARSER_DEPTH_MAX + 1; i++)
		line[n++] = ')';
	memcpy(line + n, "\r\n", 3);
	h_put(&h, line);
	h_expect_error(&h, "D2", "[LIMIT] Lists nested too deeply", false);
	assert_parses(&h, "D3 NOOP\r\n", "D3 NOOP");
	h_deinit(&h);
}

static void
test_imap_parser_argument_count_limit(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h.p.args_max = 5;
	/* Lists and their elements all count. */
	cmd = h_parse(&h, "C1 X a (b c) d\r\n");
	assert_cmd(&cmd, "C1 X a (b c) d");
	h_put(&h, "C2 X a (b c) d e\r\n");
	h_expect_error(&h, "C2", "[LIMIT] Too many arguments", false);
	h_put(&h, "C3 X a (b c d e)\r\n");
	h_expect_error(&h, "C3", "[LIMIT]", false);
	assert_parses(&h, "C4 X \"1\" 2 3 4 5\r\n", "C4 X \"1\" 2 3 4 5");
	h_deinit(&h);
}

static void
test_imap_parser_line_too_long(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	char line[700];

	(void)state;
	h_init(&h, 512, LITERAL_MAX_TEST);
	/* 512 bytes with CRLF: accepted. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "L1 X ", 5);
	memcpy(line + 510, "\r\n", 3);
	cmd = h_parse(&h, line);
	assert_int_equal(cmd->args[0].len, 505);
	imap_cmd_free(&cmd);
	/* 513: refused with the tag, and dropped to its end. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "L2 X ", 5);
	memcpy(line + 511, "\r\n", 3);
	h_put(&h, line);
	h_expect_error(&h, "L2", "[TOOBIG] Command line too long", false);
	assert_parses(&h, "L3 NOOP\r\n", "L3 NOOP");
	/* Refused before its end arrives, with the buf never full. */
	memset(line, 'b', sizeof(line));
	memcpy(line, "L4 X ", 5);
	h_put_n(&h, line, 600);
	h_expect_error(&h, "L4", "[TOOBIG]", false);
	h_put_n(&h, line, 600);
	assert_int_equal(h_next(&h, &cmd), PARSE_MORE);
	assert_int_equal(h.b.len, 0);
	h_put(&h, "bbb {3+}\r\nX1 NOOP\r\nL5 NOOP\r\n");
	assert_parses(&h, "", "L5 NOOP");
	/* Line bytes add up across the lines of a command, literals not. */
	h_put(&h, "L6 X {600+}\r\n");
	for (int i = 0; i < 600; i++)
		h_put(&h, "z");
	h_put(&h, " ");
	h_put_n(&h, line + 100, 300);
	h_put(&h, "\r\n");
	cmd = h_parse(&h, "");
	assert_int_equal(cmd->nargs, 2);
	assert_int_equal(cmd->args[1].len, 300);
	imap_cmd_free(&cmd);
	h_put(&h, "L7 X {1+}\r\nz ");
	h_put_n(&h, line + 100, 300);
	h_put(&h, " {1+}\r\nz ");
	h_put_n(&h, line + 100, 300);
	h_put(&h, "\r\n");
	h_expect_error(&h, "L7", "[TOOBIG]", false);
	assert_parses(&h, "L8 NOOP\r\n", "L8 NOOP");
	/* A line too long before its tag is known. */
	h_put_n(&h, line + 100, 600);
	h_put(&h, "\r\n");
	h_expect_error(&h, NULL, "[TOOBIG]", false);
	h_deinit(&h);
}

/* ---- Strings ---------------------------------------------------------- */

static void
test_imap_parser_quoted_escapes(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "Q1 LOGIN \"a\\\"b\\\\c\" \"(x) {3} %*\"\r\n");
	assert_int_equal(cmd->args[0].kind, IMAP_ARG_QUOTED);
	assert_string_equal(cmd->args[0].str, "a\"b\\c");
	assert_int_equal(cmd->args[0].len, 5);
	assert_string_equal(cmd->args[1].str, "(x) {3} %*");
	imap_cmd_free(&cmd);
	h_put(&h, "Q2 LOGIN \"a\\nb\" x\r\n");
	h_expect_error(&h, "Q2", "escaped", false);
	h_put(&h, "Q3 LOGIN \"abc\r\n");
	h_expect_error(&h, "Q3", "Missing closing quote", false);
	h_put(&h, "Q4 LOGIN \"ab\\\"\r\n");
	h_expect_error(&h, "Q4", "Missing closing quote", false);
	h_put(&h, "Q5 LOGIN \"a\rb\"\r\n");
	h_expect_error(&h, "Q5", "CR", false);
	h_put(&h, "Q6 LOGIN \"a\"\"b\"\r\n");
	h_expect_error(&h, "Q6", "Missing space", false);
	assert_parses(&h, "Q7 X \"\\\\\"\r\n", "Q7 X \"\\\"");
	h_deinit(&h);
}

static void
test_imap_parser_8bit_in_quoted_strings(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	/* RFC 3501: 8-bit text needs a literal. */
	h_put(&h, "U1 SELECT \"caf\xc3\xa9\"\r\n");
	h_expect_error(&h, "U1", "8-bit", false);
	h.p.is_utf8 = true;
	cmd = h_parse(&h, "U2 SELECT \"caf\xc3\xa9 \xe2\x82\xac "
	    "\xf0\x9f\x93\xa7\"\r\n");
	assert_string_equal(cmd->args[0].str,
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
	imap_cmd_free(&cmd);
	/* Only well-formed UTF-8 (RFC 3629). */
	h_put(&h, "U3 SELECT \"\xc0\x80\"\r\n");
	h_expect_error(&h, "U3", "UTF-8", false);
	h_put(&h, "U4 SELECT \"\xed\xa0\x80\"\r\n");
	h_expect_error(&h, "U4", "UTF-8", false);
	h_put(&h, "U5 SELECT \"\x80\"\r\n");
	h_expect_error(&h, "U5", "UTF-8", false);
	h_put(&h, "U6 SELECT \"\xe2\x82\"\r\n");
	h_expect_error(&h, "U6", "UTF-8", false);
	h_put(&h, "U7 SELECT \"\xf4\x90\x80\x80\"\r\n");
	h_expect_error(&h, "U7", "UTF-8", false);
	/* Never in atoms. */
	h_put(&h, "U8 SELECT caf\xc3\xa9\r\n");
	h_expect_error(&h, "U8", "8-bit", false);
	/* Literals carry any octet but NUL. */
	assert_parses(&h, "U9 SELECT {2+}\r\n\xff\xfe\r\n",
	    "U9 SELECT {2}\xff\xfe");
	h_deinit(&h);
}

static void
test_imap_parser_nul_refused_outside_literal8(void **state)
{
	static const char in_atom[] = "N1 SELECT a\0b\r\n";
	static const char in_quoted[] = "N2 SELECT \"a\0b\"\r\n";
	static const char in_tag[] = "N\0 NOOP\r\n";
	static const char in_name[] = "N3 NO\0OP\r\n";
	static const char in_literal[] =
	    "N4 APPEND x {5+}\r\na\0bcd {3+}\r\nxyz\r\n";
	static const char in_literal8[] = "N5 APPEND x ~{3+}\r\na\0b\r\n";
	struct h h;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put_n(&h, in_atom, sizeof(in_atom) - 1);
	h_expect_error(&h, "N1", "NUL", false);
	h_put_n(&h, in_quoted, sizeof(in_quoted) - 1);
	h_expect_error(&h, "N2", "NUL", false);
	h_put_n(&h, in_tag, sizeof(in_tag) - 1);
	h_expect_error(&h, NULL, "NUL", false);
	h_put_n(&h, in_name, sizeof(in_name) - 1);
	h_expect_error(&h, "N3", "NUL", false);
	/* RFC 9051 §4.3: not in a literal either; the rest of the literal
	 * and of the command are dropped unread. */
	h_put_n(&h, in_literal, sizeof(in_literal) - 1);
	h_expect_error(&h, "N4", "NUL byte in a literal", false);
	assert_parses(&h, "N6 NOOP\r\n", "N6 NOOP");
	/* literal8 (RFC 3516) may hold it. */
	h_put_n(&h, in_literal8, sizeof(in_literal8) - 1);
	assert_parses(&h, "", "N5 APPEND x ~{3}a\\0b");
	h_deinit(&h);
}

/* ---- Errors ----------------------------------------------------------- */

static void
test_imap_parser_bad_syntax(void **state)
{
	static const struct {
		const char *line;
		const char *tag;	/* NULL: untagged BAD */
		const char *text;
	} cases[] = {
		{ " NOOP\r\n", NULL, "Missing tag" },
		{ "A+1 NOOP\r\n", NULL, "Invalid tag" },
		{ "A*1 NOOP\r\n", NULL, "Invalid tag" },
		{ "{3}\r\n", NULL, "Invalid tag" },
		{ "B1\r\n", "B1", "Missing command name" },
		{ "B1 \r\n", "B1", "Missing command name" },
		{ "B2  NOOP\r\n", "B2", "Missing command name" },
		{ "B3 UID\r\n", "B3", "Missing command after UID" },
		{ "B4 NO(OP\r\n", "B4", "Invalid command name" },
		{ "B5 {3}\r\n", "B5", "Invalid command name" },
		{ "B6 X )\r\n", "B6", "Unexpected )" },
		{ "B7 X (a\r\n", "B7", "Missing )" },
		{ "B8 X (a (b)\r\n", "B8", "Missing )" },
		{ "B9 X \"a\"b\r\n", "B9", "Missing space" },
		{ "C1 X (a)b\r\n", "C1", "Missing space" },
		{ "C2 X {3}abc\r\n", "C2", "end its line" },
		{ "C3 X {}\r\n", "C3", "Invalid literal" },
		{ "C4 X {3\r\n", "C4", "Invalid literal" },
		{ "C5 X {+}\r\n", "C5", "Invalid literal" },
		{ "C6 X a{3}\r\n", "C6", "Invalid character" },
		{ "C7 X \\ a\r\n", "C7", "Invalid flag" },
		{ "C8 X a\\b\r\n", "C8", "Invalid character" },
		{ "C9 X a\"b\"\r\n", "C9", "Invalid character" },
		{ "D1 X \x01\r\n", "D1", "Invalid character" },
		{ "D2 X a\tb\r\n", "D2", "Invalid character" },
		{ "D3 X a\rb\r\n", "D3", "Invalid character" },
		{ "D4 FETCH 1 BODY[HEADER\r\n", "D4", "Missing ]" },
		{ "D5 FETCH 1 BODY[HEADER.FIELDS (a {3}\r\n", "D5",
		    "not supported" },
		{ "D6 FETCH 1 BODY[[]]\r\n", "D6", "Invalid character" },
		{ "D7 FETCH 1 BODY[\"a]\r\n", "D7", "Missing closing quote" },
	};
	struct h h;
	size_t i;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		h_put(&h, cases[i].line);
		h_expect_error(&h, cases[i].tag, cases[i].text, false);
		/* Each error drops its line and nothing more. */
		assert_parses(&h, "Z NOOP\r\n", "Z NOOP");
	}
	h_deinit(&h);
}

static void
test_imap_parser_error_then_bytes_one_at_a_time(void **state)
{
	static const char text[] = "E1 X ) {4+}\r\nE2 x\r\nE3 NOOP\r\n";
	struct h h;
	struct imap_cmd *cmd;
	size_t i, errors = 0, done = 0;
	bool cont;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	for (i = 0; i < sizeof(text) - 1; i++) {
		enum parse_rc rc;

		h_put_n(&h, text + i, 1);
		while ((rc = h_feed(&h, &cmd, &cont)) != PARSE_MORE) {
			if (rc == PARSE_ERROR) {
				assert_string_equal(h.p.error_tag, "E1");
				errors++;
			} else {
				assert_cmd(&cmd, "E3 NOOP");
				done++;
			}
		}
		imap_parser_compact(&h.p, &h.b);
	}
	assert_int_equal(errors, 1);
	assert_int_equal(done, 1);
	h_deinit(&h);
}

static void
test_imap_parser_reset_drops_partial_command(void **state)
{
	struct h h;
	struct imap_cmd *cmd;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	h_put(&h, "R1 LOGIN {10+}\r\nabc");
	assert_int_equal(h_next(&h, &cmd), PARSE_MORE);
	assert_non_null(h.p.cmd);
	/* STARTTLS-like: the input read so far goes with the state. */
	imap_parser_reset(&h.p);
	buf_clear(&h.b);
	assert_null(h.p.cmd);
	assert_parses(&h, "R2 NOOP\r\n", "R2 NOOP");
	h_deinit(&h);
}

/* ---- Plain lines ------------------------------------------------------ */

static void
test_imap_parser_read_line_for_authenticate_and_idle(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	const char *line;
	size_t len;
	char big[700];

	(void)state;
	h_init(&h, 512, LITERAL_MAX_TEST);
	h_put(&h, "A1 AUTHENTICATE PLAIN\r\ndGVzdA==\r\n*\nA2 IDLE\r\nDO");
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, "A1 AUTHENTICATE PLAIN");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_DONE);
	assert_int_equal(len, 8);
	assert_memory_equal(line, "dGVzdA==", 8);
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_DONE);
	assert_int_equal(len, 1);
	assert_memory_equal(line, "*", 1);
	assert_int_equal(h_next(&h, &cmd), PARSE_DONE);
	assert_cmd(&cmd, "A2 IDLE");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_MORE);
	imap_parser_compact(&h.p, &h.b);
	h_put(&h, "N");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_MORE);
	h_put(&h, "E\r\n");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_DONE);
	assert_int_equal(len, 4);
	assert_memory_equal(line, "DONE", 4);
	imap_parser_compact(&h.p, &h.b);
	/* Over line_max: one error, the rest of that line dropped. */
	memset(big, 'Q', sizeof(big));
	h_put_n(&h, big, 600);
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_ERROR);
	assert_non_null(h.p.error_text);
	assert_false(h.p.is_fatal);
	imap_parser_compact(&h.p, &h.b);
	h_put_n(&h, big, 600);
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_MORE);
	h_put(&h, "\r\n*\r\n");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_DONE);
	assert_int_equal(len, 1);
	imap_parser_compact(&h.p, &h.b);
	/* A plain line announces no literal, even when it ends like one. */
	h_put_n(&h, big, 600);
	h_put(&h, "{5+}\r\nX1 NOOP\r\n");
	assert_int_equal(imap_parser_read_line(&h.p, &h.b, &line, &len),
	    PARSE_ERROR);
	assert_parses(&h, "", "X1 NOOP");
	h_deinit(&h);
}

/* ---- Sequence sets ---------------------------------------------------- */

static void
assert_ranges(const struct imap_seqset *set, const uint32_t *want,
    size_t nwant)
{
	assert_int_equal(set->n, nwant / 2);
	for (size_t i = 0; i < set->n; i++) {
		assert_int_equal(set->ranges[i].first, want[2 * i]);
		assert_int_equal(set->ranges[i].last, want[2 * i + 1]);
	}
}

static void
test_imap_seqset_parse(void **state)
{
	static const char *const bad[] = {
		"", "0", "1:", ":1", "1,,2", "1,", ",1", "01", "4294967296",
		"1:2:3", "a", "1 ,2", "$,1", "1:0", "**", "-1", "1.5",
	};
	struct imap_seqset set;
	size_t i;

	(void)state;
	assert_int_equal(imap_seqset_parse("1:*,5,7:9", 100, &set), 0);
	assert_true(set.has_star);
	assert_int_equal(set.star_min, 1);
	assert_int_equal(set.star_max, 1);
	assert_ranges(&set, (const uint32_t[]){ 5, 5, 7, 9 }, 4);
	imap_seqset_deinit(&set);

	/* Reversed ranges, overlaps and neighbours are normalized. */
	assert_int_equal(imap_seqset_parse("9:7,1,3,2,5:4,6,20,4294967295:"
	    "4294967294", 100, &set), 0);
	assert_false(set.has_star);
	assert_ranges(&set, (const uint32_t[]){ 1, 9, 20, 20, 4294967294u,
	    4294967295u }, 6);
	assert_true(is_imap_seqset_member(&set, 1));
	assert_true(is_imap_seqset_member(&set, 9));
	assert_false(is_imap_seqset_member(&set, 10));
	assert_true(is_imap_seqset_member(&set, 20));
	assert_false(is_imap_seqset_member(&set, 0));
	assert_true(is_imap_seqset_member(&set, UINT32_MAX));
	imap_seqset_deinit(&set);

	assert_int_equal(imap_seqset_parse("$", 1, &set), 0);
	assert_true(set.is_saved);
	assert_int_equal(set.n, 0);
	imap_seqset_deinit(&set);

	assert_int_equal(imap_seqset_parse("*", 1, &set), 0);
	assert_true(set.has_star);
	assert_int_equal(set.n, 0);
	imap_seqset_deinit(&set);

	/* The item count is bounded before memory is taken. */
	assert_int_equal(imap_seqset_parse("1,2,3", 3, &set), 0);
	imap_seqset_deinit(&set);
	assert_int_equal(imap_seqset_parse("1,2,3", 2, &set), -1);
	assert_null(set.ranges);

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (imap_seqset_parse(bad[i], 100, &set) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_null(set.ranges);
		assert_int_equal(set.n, 0);
	}
}

static void
test_imap_seqset_resolve_star(void **state)
{
	struct imap_seqset set;

	(void)state;
	assert_int_equal(imap_seqset_parse("1:*", 10, &set), 0);
	imap_seqset_resolve(&set, 10);
	assert_false(set.has_star);
	assert_ranges(&set, (const uint32_t[]){ 1, 10 }, 2);
	imap_seqset_deinit(&set);

	/* "20:*" with 10 as the last: 10:20, so the last is included. */
	assert_int_equal(imap_seqset_parse("20:*", 10, &set), 0);
	imap_seqset_resolve(&set, 10);
	assert_ranges(&set, (const uint32_t[]){ 10, 20 }, 2);
	imap_seqset_deinit(&set);

	/* A range inside "5:*" must survive a small "*". */
	assert_int_equal(imap_seqset_parse("5:*,6:8", 10, &set), 0);
	imap_seqset_resolve(&set, 3);
	assert_ranges(&set, (const uint32_t[]){ 3, 8 }, 2);
	imap_seqset_deinit(&set);

	assert_int_equal(imap_seqset_parse("*:5,9,*", 10, &set), 0);
	imap_seqset_resolve(&set, 2);
	assert_ranges(&set, (const uint32_t[]){ 2, 5, 9, 9 }, 4);
	assert_false(is_imap_seqset_member(&set, 1));
	assert_true(is_imap_seqset_member(&set, 2));
	assert_false(is_imap_seqset_member(&set, 6));
	imap_seqset_deinit(&set);

	/* An empty mailbox: a lone "*" covers nothing. */
	assert_int_equal(imap_seqset_parse("*", 10, &set), 0);
	imap_seqset_resolve(&set, 0);
	assert_int_equal(set.n, 0);
	assert_false(is_imap_seqset_member(&set, 0));
	imap_seqset_deinit(&set);
}

/* ---- FETCH sections --------------------------------------------------- */

static void
test_imap_fetch_section_parse(void **state)
{
	struct imap_fetch_section s;

	(void)state;
	assert_int_equal(imap_fetch_section_parse(
	    "BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>", &s), 0);
	assert_int_equal(s.kind, IMAP_FETCH_BODY_PEEK);
	assert_int_equal(s.nparts, 2);
	assert_int_equal(s.parts[0], 1);
	assert_int_equal(s.parts[1], 2);
	assert_int_equal(s.text, IMAP_SECTION_HEADER_FIELDS);
	assert_int_equal(s.nfields, 2);
	assert_string_equal(s.fields[0], "From");
	assert_string_equal(s.fields[1], "To");
	assert_true(s.has_partial);
	assert_int_equal(s.partial_offset, 0);
	assert_int_equal(s.partial_count, 100);
	imap_fetch_section_deinit(&s);
	assert_null(s.fields);

	assert_int_equal(imap_fetch_section_parse("body[header.fields.not "
	    "(Subject  \"X-A\\\"b\" List-ID)]", &s), 0);
	assert_int_equal(s.kind, IMAP_FETCH_BODY);
	assert_int_equal(s.nparts, 0);
	assert_int_equal(s.text, IMAP_SECTION_HEADER_FIELDS_NOT);
	assert_int_equal(s.nfields, 3);
	assert_string_equal(s.fields[1], "X-A\"b");
	assert_string_equal(s.fields[2], "List-ID");
	assert_false(s.has_partial);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BODY[]", &s), 0);
	assert_int_equal(s.text, IMAP_SECTION_ALL);
	assert_int_equal(s.nparts, 0);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BODY[3.1.MIME]", &s), 0);
	assert_int_equal(s.text, IMAP_SECTION_MIME);
	assert_int_equal(s.nparts, 2);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BODY[4.TEXT]<10.5>", &s),
	    0);
	assert_int_equal(s.text, IMAP_SECTION_TEXT);
	assert_int_equal(s.partial_offset, 10);
	assert_int_equal(s.partial_count, 5);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BODY[2]", &s), 0);
	assert_int_equal(s.text, IMAP_SECTION_ALL);
	assert_int_equal(s.nparts, 1);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BODY[HEADER]", &s), 0);
	assert_int_equal(s.text, IMAP_SECTION_HEADER);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse(
	    "BINARY[1.2]<5.9223372036854775807>", &s), 0);
	assert_int_equal(s.kind, IMAP_FETCH_BINARY);
	assert_int_equal(s.partial_count, INT64_MAX);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("BINARY.SIZE[1]", &s), 0);
	assert_int_equal(s.kind, IMAP_FETCH_BINARY_SIZE);
	imap_fetch_section_deinit(&s);

	assert_int_equal(imap_fetch_section_parse("binary.peek[]", &s), 0);
	assert_int_equal(s.kind, IMAP_FETCH_BINARY_PEEK);
	imap_fetch_section_deinit(&s);
}

static void
test_imap_fetch_section_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"BODY", "BODY[", "BODYX[]", "RFC822[]", "BODY[]x",
		"BODY[MIME]",			/* MIME needs a part */
		"BODY[1.]", "BODY[.1]", "BODY[0]", "BODY[01]", "BODY[1..2]",
		"BODY[1HEADER]", "BODY[HEADER.FIELDS]",
		"BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS (a]",
		"BODY[HEADER.FIELDS(a)]", "BODY[HEADER.FIELDS (a\"b\")]",
		"BODY[HEADER.FIELDS (\"a)]", "BODY[HEADERX]", "BODY[TEXT.1]",
		"BODY[4294967296]", "BINARY[1.TEXT]", "BINARY[HEADER]",
		"BINARY[1.]", "BINARY.SIZE[1]<0.5>", "BODY[]<0.0>",
		"BODY[]<5>", "BODY[]<5.>", "BODY[]<.5>", "BODY[]<1.2>x",
		"BODY[]<9223372036854775808.1>", "BODY[]<-1.2>",
		"BODY[HEADER.FIELDS (a\\b)]",
	};
	struct imap_fetch_section s;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (imap_fetch_section_parse(bad[i], &s) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_null(s.fields);
		assert_int_equal(s.nparts, 0);
	}
}

static void
test_imap_parser_section_is_one_atom(void **state)
{
	struct h h;
	struct imap_cmd *cmd;
	struct imap_fetch_section s;

	(void)state;
	h_init(&h, LINE_MAX_TEST, LITERAL_MAX_TEST);
	cmd = h_parse(&h, "F1 FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS.NOT "
	    "(From \"To ]\")]<0.100> BINARY[1] RFC822.SIZE)\r\n");
	assert_int_equal(cmd->nargs, 2);
	assert_int_equal(cmd->args[1].kind, IMAP_ARG_LIST);
	assert_int_equal(cmd->args[1].len, 4);
	assert_string_equal(cmd->args[1].list[1].str,
	    "BODY.PEEK[HEADER.FIELDS.NOT (From \"To ]\")]<0.100>");
	assert_int_equal(imap_fetch_section_parse(cmd->args[1].list[1].str,
	    &s), 0);
	assert_int_equal(s.nfields, 2);
	assert_string_equal(s.fields[1], "To ]");
	imap_fetch_section_deinit(&s);
	imap_cmd_free(&cmd);
	/* Elsewhere "[" is an atom character like any other. */
	assert_parses(&h, "F2 SELECT foo[bar\r\n", "F2 SELECT foo[bar");
	assert_parses(&h, "F3 FETCH 1 BODY[]\r\n", "F3 FETCH 1 BODY[]");
	h_deinit(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_parser_simple_command),
		cmocka_unit_test(test_imap_parser_shrink_and_trim),
		cmocka_unit_test(test_imap_parser_uid_command),
		cmocka_unit_test(test_imap_parser_every_token_kind),
		cmocka_unit_test(test_imap_parser_numbers_checked_for_overflow),
		cmocka_unit_test(
		    test_imap_parser_spaces_forgiven_between_arguments),
		cmocka_unit_test(test_imap_parser_pipelined_commands),
		cmocka_unit_test(test_imap_parser_empty_lines_ignored),
		cmocka_unit_test(test_imap_parser_command_one_byte_at_a_time),
		cmocka_unit_test(test_imap_parser_literal_split_across_reads),
		cmocka_unit_test(
		    test_imap_parser_large_literal_spooled_split_across_reads),
		cmocka_unit_test(
		    test_imap_parser_spool_only_where_the_session_wants),
		cmocka_unit_test(
		    test_imap_parser_spool_closed_when_command_dropped),
		cmocka_unit_test(test_imap_parser_spool_one_file_per_command),
		cmocka_unit_test(
		    test_imap_parser_spool_when_memory_would_pass_spool_min),
		cmocka_unit_test(test_imap_parser_literal_check_refuses),
		cmocka_unit_test(
		    test_imap_parser_sync_literal_stops_for_continuation),
		cmocka_unit_test(
		    test_imap_parser_literal_plus_needs_no_continuation),
		cmocka_unit_test(
		    test_imap_parser_sync_literal_too_big_refused_unread),
		cmocka_unit_test(
		    test_imap_parser_nonsync_literal_too_big_is_fatal),
		cmocka_unit_test(
		    test_imap_parser_literal_minus_limits_only_nonsync),
		cmocka_unit_test(
		    test_imap_parser_literals_of_a_command_share_the_limit),
		cmocka_unit_test(test_imap_parser_too_many_literals),
		cmocka_unit_test(
		    test_imap_parser_refused_command_drops_nonsync_literals),
		cmocka_unit_test(test_imap_parser_depth_limit),
		cmocka_unit_test(test_imap_parser_argument_count_limit),
		cmocka_unit_test(test_imap_parser_line_too_long),
		cmocka_unit_test(test_imap_parser_quoted_escapes),
		cmocka_unit_test(test_imap_parser_8bit_in_quoted_strings),
		cmocka_unit_test(test_imap_parser_nul_refused_outside_literal8),
		cmocka_unit_test(test_imap_parser_bad_syntax),
		cmocka_unit_test(
		    test_imap_parser_error_then_bytes_one_at_a_time),
		cmocka_unit_test(test_imap_parser_reset_drops_partial_command),
		cmocka_unit_test(
		    test_imap_parser_read_line_for_authenticate_and_idle),
		cmocka_unit_test(test_imap_seqset_parse),
		cmocka_unit_test(test_imap_seqset_resolve_star),
		cmocka_unit_test(test_imap_fetch_section_parse),
		cmocka_unit_test(test_imap_fetch_section_parse_refuses),
		cmocka_unit_test(test_imap_parser_section_is_one_atom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
