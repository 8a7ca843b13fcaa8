/*
 * libFuzzer harness for the METADATA arguments (imap_metadata.c): the
 * input, up to its first NUL, goes to imap_metadata_name_norm() as an
 * entry name (for GET and for SET); the whole input, prefixed with
 * "a GETMETADATA " and then "a SETMETADATA ", goes through the real
 * command parser into imap_metadata_get_parse() and
 * imap_metadata_set_parse().
 *
 * Checked: no crash, leak or undefined behaviour; an accepted name is
 * lowercase printable ASCII without space, "*" or "%", starts with
 * "/private" or "/shared" followed by nothing or "/", has no "//" and no
 * trailing "/", is at most STORE_METADATA_NAME_MAX bytes, and is below
 * /private or /shared when set; norm∘norm is the identity; a parsed GET
 * has 1..IMAP_METADATA_ENTRIES_MAX valid names; a parsed SET has 1..max
 * entries, each with a valid name and a value that is NULL or len bytes.
 *
 *	fuzz-sources: src/imap/imap_metadata.c src/imap/imap_parser.c
 *	fuzz-sources: src/imap/imap_parser_seqset.c
 *	fuzz-sources: src/imap/imap_parser_section.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/buf.h"

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_imap_metadata: invariant broken: %s\n",
		    what);
		abort();
	}
}

static void
check_name(const char *n, bool is_set)
{
	size_t len = strlen(n);
	const char *e;

	check(len > 0 && len <= STORE_METADATA_NAME_MAX, "name length");
	for (size_t i = 0; i < len; i++)
		check(n[i] > 0x20 && n[i] < 0x7f && n[i] != '*' &&
		    n[i] != '%' && !(n[i] >= 'A' && n[i] <= 'Z'),
		    "name characters");
	check(strstr(n, "//") == NULL && n[len - 1] != '/', "name slashes");
	if (strncmp(n, "/private", 8) == 0)
		e = n + 8;
	else if (strncmp(n, "/shared", 7) == 0)
		e = n + 7;
	else
		e = NULL;
	check(e != NULL && (*e == '\0' || *e == '/'), "name prefix");
	check(!is_set || *e == '/', "set below the prefix");
	{
		char *again;
		const char *err;

		check(imap_metadata_name_norm(n, len, is_set, &again,
		    &err) == 0 && strcmp(again, n) == 0, "norm idempotent");
		free(again);
	}
}

static struct imap_cmd *
parse(const char *prefix, const uint8_t *data, size_t size)
{
	struct imap_parser p;
	struct imap_cmd *cmd = NULL;
	struct buf b;
	bool cont;
	enum parse_rc rc;

	buf_init(&b, 70000);
	imap_parser_init(&p, 65536, 65536);
	if (buf_append(&b, prefix, strlen(prefix)) < 0 ||
	    buf_append(&b, data, size) < 0 || buf_append(&b, "\r\n", 2) < 0) {
		imap_parser_deinit(&p);
		buf_deinit(&b);
		return NULL;
	}
	do {
		rc = imap_parser_feed(&p, &b, &cmd, &cont);
	} while (rc == PARSE_MORE && cont);
	if (rc != PARSE_DONE)
		cmd = NULL;
	imap_parser_deinit(&p);
	buf_deinit(&b);
	return cmd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nlen = strnlen((const char *)data, size);
	struct imap_cmd *cmd;
	const char *err;
	char *norm;

	for (int is_set = 0; is_set < 2; is_set++) {
		if (imap_metadata_name_norm((const char *)data, nlen, is_set,
		    &norm, &err) == 0) {
			check_name(norm, is_set);
			free(norm);
		} else {
			check(err != NULL && norm == NULL, "name error");
		}
	}
	if ((cmd = parse("a GETMETADATA ", data, size)) != NULL) {
		struct imap_metadata_get g;

		if (imap_metadata_get_parse(cmd, &g, &err) == 0) {
			check(g.n >= 1 && g.n <= IMAP_METADATA_ENTRIES_MAX &&
			    g.mailbox != NULL, "get shape");
			check(g.depth <= IMAP_METADATA_DEPTH_INFINITY,
			    "depth");
			for (size_t i = 0; i < g.n; i++)
				check_name(g.names[i], false);
			imap_metadata_get_deinit(&g);
		} else {
			check(err != NULL, "get error");
		}
		imap_cmd_free(&cmd);
	}
	if ((cmd = parse("a SETMETADATA ", data, size)) != NULL) {
		struct imap_metadata_set m;

		if (imap_metadata_set_parse(cmd, &m, &err) == 0) {
			check(m.n >= 1 && m.n <= IMAP_METADATA_ENTRIES_MAX &&
			    m.mailbox != NULL, "set shape");
			for (size_t i = 0; i < m.n; i++) {
				check_name(m.entries[i].name, true);
				check(m.entries[i].value != NULL ||
				    m.entries[i].len == 0, "nil value");
			}
			imap_metadata_set_deinit(&m);
		} else {
			check(err != NULL, "set error");
		}
		imap_cmd_free(&cmd);
	}
	return 0;
}
