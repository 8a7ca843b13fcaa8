/*
 * pop3_int: what the files of src/pop3 share.
 */
#ifndef POSTERN_POP3_INT_H
#define POSTERN_POP3_INT_H

#include <stddef.h>

/* RFC 2449 §4: keywords are 3 or 4 characters (we take 1 to 4, so that a
 * short unknown word gets "unknown command", not a syntax error). */
#define POP3_KEYWORD_MAX 4

/* A command line split into its keyword and its argument. */
struct pop3_line {
	char keyword[POP3_KEYWORD_MAX + 1];	/* upper case */
	const char *arg;	/* into the line, or NULL without one */
	size_t arg_len;
};

/* Splits line (len bytes, CRLF removed; may hold any byte): the keyword
 * is letters only, then the end of the line or one space and the
 * argument, which runs to the end. Returns 0, or -1 when the line does not
 * start with such a keyword. Pure: the session and the fuzzer use it. */
int pop3_line_parse(const char *line, size_t len, struct pop3_line *out);

#endif
