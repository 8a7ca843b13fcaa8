/*
 * queue_text: a growing NUL-terminated string, for the messages the queue
 * composes (DSN reports, DKIM-Signature fields).
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
