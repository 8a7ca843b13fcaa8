/*
 * fuzz_pop3: POP3 command lines as the session splits them
 * (pop3_line_parse() in src/pop3/pop3_parse.c, RFC 1939 §3, RFC 2449 §4).
 *
 * Input: lines; each is split as it arrives (any byte) and, as the session
 * does today, as its NUL-terminated copy.
 *
 * Checked against a reference reading: a line parses exactly when it
 * starts with 1 to POP3_KEYWORD_MAX letters followed by its end or a
 * space; the keyword is those letters in upper case, NUL-terminated; the
 * argument is NULL without a space, else exactly the bytes after the
 * first space, inside the line.
 *
 * fuzz-sources: src/pop3/pop3_parse.c
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3/pop3_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_pop3: invariant broken: %s\n", what);
		abort();
	}
}

static bool
is_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void
line_check(const char *line, size_t len)
{
	struct pop3_line pl;
	size_t n = 0;
	bool want;
	int rc;

	memset(&pl, 0x55, sizeof(pl));
	rc = pop3_line_parse(line, len, &pl);
	while (n < len && is_letter(line[n]))
		n++;
	want = n >= 1 && n <= POP3_KEYWORD_MAX && (n == len || line[n] == ' ');
	check((rc == 0) == want, "parses exactly the keyword lines");
	if (rc != 0)
		return;
	check(strlen(pl.keyword) == n, "keyword length");
	for (size_t i = 0; i < n; i++)
		check(pl.keyword[i] == (line[i] & ~0x20) &&
		    pl.keyword[i] >= 'A' && pl.keyword[i] <= 'Z',
		    "keyword upper case");
	if (n == len) {
		check(pl.arg == NULL && pl.arg_len == 0, "no argument");
	} else {
		check(pl.arg == line + n + 1 && pl.arg_len == len - n - 1,
		    "argument is the rest of the line");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i <= size;) {
		const char *line = (const char *)data + i;
		const char *nl = memchr(line, '\n', size - i);
		size_t len = nl ? (size_t)(nl - line) : size - i;
		char *copy = malloc(len + 1);

		line_check(line, len);
		memcpy(copy, line, len);
		copy[len] = '\0';
		line_check(copy, strlen(copy));
		free(copy);
		i += len + 1;
	}
	return 0;
}
