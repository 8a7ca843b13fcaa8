/*
 * parse: the result every incremental parser of postern returns, and the
 * line reader the line-based protocols (SMTP, POP3, IMAP commands) share.
 * A parser never touches a socket: it is fed bytes and says how far it got.
 */
#ifndef POSTERN_PARSE_H
#define POSTERN_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

enum parse_rc {
	PARSE_MORE,	/* need more bytes */
	PARSE_DONE,	/* one unit (line, command) complete */
	PARSE_ERROR,	/* input refused; see the parser for why */
};

/* Reads LF-terminated lines (an optional CR before the LF is removed)
 * out of a buf, never holding more than max bytes for one line. */
struct line_reader {
	size_t off;		/* first unread byte in the buf */
	size_t max;		/* longest line accepted, line end included */
	bool is_discarding;	/* skipping the rest of an overlong line */
};

void line_reader_init(struct line_reader *r, size_t max);

/* Returns PARSE_DONE with *line_out and *len_out set to the next line
 * (borrowed from b, valid until the next compact; not NUL-terminated; line
 * end not included), PARSE_MORE if no full line is there yet, or
 * PARSE_ERROR once when a line exceeds max: the reader then silently drops
 * that line's remaining bytes and resumes after its LF. */
enum parse_rc line_reader_next(struct line_reader *r, const struct buf *b,
    const char **line_out, size_t *len_out);

/* Removes the bytes already read from b. Call once per network read. */
void line_reader_compact(struct line_reader *r, struct buf *b);

#endif
