/*
 * queue_reply: reads the SMTP server's replies for the queue's client
 * (RFC 5321 §4.2): "250-first", "250-more", "250 last"; every line of a
 * reply carries the same code. Bounded: a line longer than
 * QUEUE_REPLY_LINE_MAX or a reply of more than QUEUE_REPLY_LINES_MAX lines
 * is an error, and only QUEUE_REPLY_TEXT_MAX bytes of text are kept.
 */
#include "queue/queue_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

/* Finds the end of the line starting at off in in: returns the length of
 * the line without its end, and sets *eol_len (1 for a bare LF, 2 for
 * CRLF); -1 when no line end is in the buffer yet. */
static ssize_t
line_find(struct evbuffer *in, size_t off, size_t *eol_len)
{
	struct evbuffer_ptr start, found;
	size_t len;

	if (evbuffer_ptr_set(in, &start, off, EVBUFFER_PTR_SET) < 0)
		return -1;
	found = evbuffer_search_eol(in, &start, &len, EVBUFFER_EOL_CRLF);
	if (found.pos < 0)
		return -1;
	*eol_len = len;
	return (ssize_t)(found.pos - (ssize_t)off);
}

enum parse_rc
queue_reply_read(struct evbuffer *in, struct queue_reply *r)
{
	size_t off = 0, avail = evbuffer_get_length(in);
	char line[QUEUE_REPLY_LINE_MAX + 1];

	memset(r, 0, sizeof(*r));
	for (;;) {
		size_t eol;
		ssize_t len = line_find(in, off, &eol);
		int code;

		if (len < 0) {
			/* No line end yet: wait, unless the line is already
			 * too long. */
			return avail - off > QUEUE_REPLY_LINE_MAX ?
			    PARSE_ERROR : PARSE_MORE;
		}
		if ((size_t)len > QUEUE_REPLY_LINE_MAX || len < 3)
			return PARSE_ERROR;
		{
			struct evbuffer_ptr p;

			evbuffer_ptr_set(in, &p, off, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &p, line, (size_t)len);
		}
		line[len] = '\0';
		if (!isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (len > 3 && line[3] != ' ' && line[3] != '-'))
			return PARSE_ERROR;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (code < 200 || code > 599 ||
		    (r->nlines > 0 && code != r->code))
			return PARSE_ERROR;
		r->code = code;
		if (++r->nlines > QUEUE_REPLY_LINES_MAX)
			return PARSE_ERROR;
		if (r->len + (size_t)len + 2 < sizeof(r->text)) {
			if (r->len > 0)
				r->text[r->len++] = '\n';
			memcpy(r->text + r->len, line, (size_t)len);
			r->len += (size_t)len;
			r->text[r->len] = '\0';
		}
		off += (size_t)len + eol;
		if (len == 3 || line[3] == ' ') {
			evbuffer_drain(in, off);
			return PARSE_DONE;
		}
	}
}

void
queue_reply_ehlo(struct queue_reply *r)
{
	const char *p = r->text;

	/* The first line is the greeting; keywords follow, one a line. */
	p = strchr(p, '\n');
	while (p != NULL) {
		const char *end = strchr(p + 1, '\n');
		size_t ll = end != NULL ? (size_t)(end - p - 1) : strlen(p + 1);
		const char *kw = p + 1 + 4;
		size_t n, wl;

		if (ll <= 4) {
			p = end;
			continue;
		}
		n = ll - 4;
		wl = strcspn(kw, " \n");
		if (wl > n)
			wl = n;
		if (wl == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
			r->has_starttls = true;
		else if (wl == 10 && strncasecmp(kw, "PIPELINING", 10) == 0)
			r->has_pipelining = true;
		else if (wl == 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
			r->has_8bitmime = true;
		else if (wl == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0)
			r->has_smtputf8 = true;
		else if (wl == 3 && strncasecmp(kw, "DSN", 3) == 0)
			r->has_dsn = true;
		else if (wl == 4 && strncasecmp(kw, "SIZE", 4) == 0) {
			/* RFC 1870 §4: "SIZE" or "SIZE 12345". */
			r->has_size = true;
			if (n > 5 && kw[4] == ' ')
				r->size_max = strtoull(kw + 5, NULL, 10);
		}
		p = end;
	}
}

const char *
queue_reply_line(const struct queue_reply *r, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < r->len && o + 1 < len; i++) {
		char c = r->text[i];

		buf[o++] = c == '\n' || (unsigned char)c < 0x20 ? ' ' : c;
	}
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

const char *
queue_reply_status(const struct queue_reply *r, char *buf, size_t len)
{
	const char *t = r->len > 4 ? r->text + 4 : "";
	int cls = r->code / 100;

	/* RFC 3463 §2: class.subject.detail, the class matching the
	 * reply's first digit (RFC 2034 §4). */
	if (t[0] - '0' == cls && t[1] == '.' && isdigit((unsigned char)t[2])) {
		size_t n = strspn(t, "0123456789.");

		if (n < len && n >= 5 && n <= 11 && (t[n] == ' ' ||
		    t[n] == '\0' || t[n] == '\n')) {
			memcpy(buf, t, n);
			buf[n] = '\0';
			return buf;
		}
	}
	snprintf(buf, len, "%d.0.0", cls);
	return buf;
}
