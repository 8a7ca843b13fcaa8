/*
 * queue_text: a growing NUL-terminated string, for the messages the queue
 * composes (DSN reports, DKIM-Signature fields), and the dot-stuffing of
 * a body on its way out.
 */
#include "queue/queue_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void
queue_text_add(struct queue_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = xrealloc(t->p, t->cap);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void
queue_text_str(struct queue_text *t, const char *s)
{
	queue_text_add(t, s, strlen(s));
}

void
queue_text_printf(struct queue_text *t, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("queue: out of memory");
	queue_text_add(t, s, (size_t)n);
	free(s);
}

void
queue_stuff_init(struct queue_stuff *st)
{
	st->is_bol = true;
	st->has_cr = false;
}

size_t
queue_stuff_feed(struct queue_stuff *st, const char *in, size_t n,
    char *out)
{
	size_t o = 0;

	/* At most 2 bytes per input byte, plus a CR carried over from the
	 * last piece: a CR writes nothing until the byte after it says
	 * whether it was CRLF (2 bytes for 2) or bare (CRLF, then a byte
	 * that may be a doubled dot: 4 for 2). */
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c == '\n') {
			/* CRLF, or a bare LF: one line end. */
			out[o++] = '\r';
			out[o++] = '\n';
			st->has_cr = false;
			st->is_bol = true;
			continue;
		}
		if (st->has_cr) {
			/* The CR before was bare: a line end of its own, so
			 * that the next hop and we agree on where lines
			 * start (a dot behind it is stuffed). */
			out[o++] = '\r';
			out[o++] = '\n';
			st->has_cr = false;
			st->is_bol = true;
		}
		if (c == '\r') {
			st->has_cr = true;
			continue;
		}
		if (st->is_bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->is_bol = false;
	}
	return o;
}

size_t
queue_stuff_end(struct queue_stuff *st, char *out)
{
	size_t o = 0;

	if (st->has_cr || !st->is_bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	st->has_cr = false;
	st->is_bol = true;
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
