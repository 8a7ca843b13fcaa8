/*
 * imap_out: replies gathered in pieces and written in blocks, for the
 * commands that answer with many small numbers (SEARCH, SORT, THREAD).
 * Runs on the session's worker.
 */
#include "imap/imap_int.h"

#include <stdarg.h>
#include <stdio.h>

#include "lib/util.h"

void
imap_out_flush(struct imap_out *o)
{
	imap_write(o->s, o->buf, o->len);
	o->len = 0;
}

void
imap_out_printf(struct imap_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt,
		    ap);
		va_end(ap);
		if (n < 0)
			panic("imap_out_printf: bad format");
		if ((size_t)n < sizeof(o->buf) - o->len) {
			o->len += (size_t)n;
			return;
		}
		imap_out_flush(o);
	}
	panic("imap_out_printf: output piece too long");
}
