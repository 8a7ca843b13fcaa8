#include "mime/mime_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void
mime_str_init(struct mime_str *b)
{
	b->s = NULL;
	b->len = 0;
	b->size = 0;
}

void
mime_str_deinit(struct mime_str *b)
{
	free(b->s);
	mime_str_init(b);
}

/* Makes room for n more bytes and the NUL. The sizes here are bounded by
 * what the parse writes, which is a small multiple of the message. */
static void
str_reserve(struct mime_str *b, size_t n)
{
	size_t want;

	if (n > SIZE_MAX / 2 - b->len)
		panic("mime_str: %zu bytes after %zu", n, b->len);
	want = b->len + n + 1;
	if (want <= b->size)
		return;
	size_t size = b->size ? b->size : 64;

	while (size < want)
		size *= 2;
	b->s = xrealloc(b->s, size);
	b->size = size;
}

void
mime_str_add(struct mime_str *b, const void *p, size_t n)
{
	str_reserve(b, n);
	if (n > 0)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
mime_str_addc(struct mime_str *b, char c)
{
	mime_str_add(b, &c, 1);
}

void
mime_str_adds(struct mime_str *b, const char *s)
{
	mime_str_add(b, s, strlen(s));
}

void
mime_str_addf(struct mime_str *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("mime_str_addf: bad format %s", fmt);
	str_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
mime_str_add_imap(struct mime_str *b, const char *s, size_t n)
{
	bool is_literal = false;
	size_t i;

	/* RFC 9051 §4.3: a quoted string holds 7-bit characters other than
	 * CR and LF, with " and \ escaped; anything else is a literal. */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c == '\r' || c == '\n' || c == '\0') {
			is_literal = true;
			break;
		}
	}
	if (is_literal) {
		mime_str_addf(b, "{%zu}\r\n", n);
		mime_str_add(b, s, n);
		return;
	}
	str_reserve(b, n + 2);
	mime_str_addc(b, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			mime_str_addc(b, '\\');
		mime_str_addc(b, s[i]);
	}
	mime_str_addc(b, '"');
}

void
mime_str_add_nstring(struct mime_str *b, const char *s)
{
	if (s == NULL)
		mime_str_add(b, "NIL", 3);
	else
		mime_str_add_imap(b, s, strlen(s));
}

char *
mime_str_take(struct mime_str *b)
{
	char *s = b->s != NULL ? b->s : xstrdup("");

	mime_str_init(b);
	return s;
}
