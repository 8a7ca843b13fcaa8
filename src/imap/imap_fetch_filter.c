/*
 * imap_fetch_filter: the pure helpers of FETCH and STORE. Streaming
 * transforms of message bytes (header field subsets for HEADER.FIELDS and
 * HEADER.FIELDS.NOT, base64 and quoted-printable decoding for BINARY), a
 * header field lookup for a part's MIME header, the blank line that ends
 * a header, and sequence set formatting. No I/O and no session: the
 * caller reads the message in chunks and feeds them here, so that no
 * message is ever held whole in memory. Any thread.
 */
#include "imap/imap_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* Field filter states. */
enum {
	F_LINE_START,	/* at the start of a header line */
	F_NAME,		/* reading a field name into buf */
	F_LINE,		/* in a line whose fate is known (is_kept) */
	F_BLANK_CR,	/* a CR at the start of a line: blank line? */
	F_PASS,		/* past the blank line: everything is kept */
};

/* Quoted-printable states. */
enum {
	Q_TEXT,		/* text; buf holds white space not yet known to
			 * be trailing */
	Q_EQ,		/* after "=" */
	Q_EQ_HEX,	/* after "=" and one hex digit (in acc) */
	Q_EQ_CR,	/* after "=" CR: a soft line break */
	Q_EQ_WS,	/* after "=" and white space (in buf) */
};

/* White space held back by the quoted-printable decoder; a longer run is
 * let through, trailing or not. */
#define QP_WS_MAX 256

void
imap_fetch_filter_init(struct imap_filter *f, enum imap_filter_kind kind,
    char *const *fields, size_t nfields)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->fields = fields;
	f->nfields = nfields;
	f->state = kind == IMAP_FILTER_QP ? Q_TEXT : F_LINE_START;
	/* A continuation line before any field belongs to no field: it
	 * goes where unknown lines go. */
	f->is_kept = kind == IMAP_FILTER_FIELDS_NOT;
}

/* RFC 9051 §6.4.5: "The field-matching is case-insensitive but otherwise
 * exact." Obsolete syntax allows white space before the colon (RFC 5322
 * §4.5.3), which is not part of the name. */
static bool
is_field_listed(const struct imap_filter *f, const char *name, size_t n)
{
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < f->nfields; i++) {
		if (strlen(f->fields[i]) == n &&
		    strncasecmp(f->fields[i], name, n) == 0)
			return true;
	}
	return false;
}

static size_t
fields_run(struct imap_filter *f, const char *in, size_t len, char *out)
{
	bool is_not = f->kind == IMAP_FILTER_FIELDS_NOT;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		switch (f->state) {
		case F_LINE_START:
			if (c == ' ' || c == '\t') {
				/* A continuation line goes with its field. */
				if (f->is_kept)
					out[o++] = c;
				f->state = F_LINE;
			} else if (c == '\n') {
				/* The blank line is part of every header
				 * fetch (RFC 9051 §6.4.5). */
				out[o++] = c;
				f->state = F_PASS;
			} else if (c == '\r') {
				f->buf[0] = c;
				f->nbuf = 1;
				f->state = F_BLANK_CR;
			} else {
				f->buf[0] = c;
				f->nbuf = 1;
				f->state = F_NAME;
			}
			break;
		case F_BLANK_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				f->nbuf = 0;
				f->state = F_PASS;
				break;
			}
			f->state = F_NAME;
			/* FALLTHROUGH */
		case F_NAME:
			if (c == ':' || c == '\n') {
				/* A line without a colon is no field: only
				 * HEADER.FIELDS.NOT keeps it. */
				f->is_kept = c == ':' ?
				    is_field_listed(f, f->buf, f->nbuf) !=
				    is_not : is_not;
				if (f->is_kept) {
					memcpy(out + o, f->buf, f->nbuf);
					o += f->nbuf;
					out[o++] = c;
				}
				f->nbuf = 0;
				f->state = c == ':' ? F_LINE : F_LINE_START;
			} else if (f->nbuf < IMAP_FILTER_NAME_MAX) {
				f->buf[f->nbuf++] = c;
			} else {
				/* Longer than any name we compare. */
				f->is_kept = is_not;
				if (f->is_kept) {
					memcpy(out + o, f->buf, f->nbuf);
					o += f->nbuf;
					out[o++] = c;
				}
				f->nbuf = 0;
				f->state = F_LINE;
			}
			break;
		case F_LINE:
			if (f->is_kept)
				out[o++] = c;
			if (c == '\n')
				f->state = F_LINE_START;
			break;
		case F_PASS:
			out[o++] = c;
			break;
		}
	}
	return o;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Emits the bytes of an incomplete quantum (at "=" or at the end). */
static size_t
b64_flush(struct imap_filter *f, char *out)
{
	size_t o = 0;

	if (f->nacc == 2) {
		out[o++] = (char)(f->acc >> 4);
	} else if (f->nacc == 3) {
		out[o++] = (char)(f->acc >> 10);
		out[o++] = (char)(f->acc >> 2);
	}
	f->acc = 0;
	f->nacc = 0;
	return o;
}

/* RFC 2045 §6.8: characters outside the alphabet (line breaks above
 * all) are ignored; "=" ends the data, but a decoder that carries on
 * after it also reads concatenated encodings, as many mailers make. */
static size_t
base64_run(struct imap_filter *f, const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (in[i] == '=') {
			o += b64_flush(f, out + o);
			continue;
		}
		if (v < 0)
			continue;
		f->acc = f->acc << 6 | (uint32_t)v;
		if (++f->nacc == 4) {
			out[o++] = (char)(f->acc >> 16);
			out[o++] = (char)(f->acc >> 8);
			out[o++] = (char)f->acc;
			f->acc = 0;
			f->nacc = 0;
		}
	}
	return o;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	/* RFC 2045 §6.7 (1): lowercase is not valid, but a robust decoder
	 * takes it. */
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t
ws_flush(struct imap_filter *f, char *out)
{
	size_t n = f->nbuf;

	memcpy(out, f->buf, n);
	f->nbuf = 0;
	return n;
}

/* RFC 2045 §6.7: "=XY" is a byte, "=" at the end of a line a soft line
 * break, and white space at the end of a line is not data (rule 3).
 * Anything else that starts with "=" is kept as it stands (the robust
 * reading the RFC suggests). Line breaks are kept as they are. */
static size_t
qp_run(struct imap_filter *f, const char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		int v;

		switch (f->state) {
		case Q_TEXT:
			if (c == ' ' || c == '\t') {
				if (f->nbuf == QP_WS_MAX)
					o += ws_flush(f, out + o);
				f->buf[f->nbuf++] = (char)c;
			} else if (c == '\r' || c == '\n') {
				f->nbuf = 0;
				out[o++] = (char)c;
			} else if (c == '=') {
				o += ws_flush(f, out + o);
				f->state = Q_EQ;
			} else {
				o += ws_flush(f, out + o);
				out[o++] = (char)c;
			}
			i++;
			break;
		case Q_EQ:
			if ((v = hex_value(c)) >= 0) {
				f->acc = c;
				f->state = Q_EQ_HEX;
			} else if (c == '\r') {
				f->state = Q_EQ_CR;
			} else if (c == '\n') {
				f->state = Q_TEXT;
			} else if (c == ' ' || c == '\t') {
				f->buf[f->nbuf++] = (char)c;
				f->state = Q_EQ_WS;
			} else {
				out[o++] = '=';
				f->state = Q_TEXT;
				continue;	/* c again, as text */
			}
			i++;
			break;
		case Q_EQ_HEX:
			f->state = Q_TEXT;
			if ((v = hex_value(c)) < 0) {
				out[o++] = '=';
				out[o++] = (char)f->acc;
				continue;
			}
			out[o++] = (char)(hex_value((unsigned char)f->acc) <<
			    4 | v);
			i++;
			break;
		case Q_EQ_CR:
			f->state = Q_TEXT;
			if (c == '\n')
				i++;
			break;
		case Q_EQ_WS:
			if ((c == ' ' || c == '\t') && f->nbuf < QP_WS_MAX) {
				f->buf[f->nbuf++] = (char)c;
				i++;
			} else if (c == '\r' || c == '\n') {
				/* "=" with trailing white space: still a
				 * soft line break. */
				f->nbuf = 0;
				f->state = c == '\r' ? Q_EQ_CR : Q_TEXT;
				i++;
			} else {
				out[o++] = '=';
				o += ws_flush(f, out + o);
				f->state = Q_TEXT;
			}
			break;
		}
	}
	return o;
}

size_t
imap_fetch_filter_run(struct imap_filter *f, const char *in, size_t len,
    char *out)
{
	switch (f->kind) {
	case IMAP_FILTER_COPY:
		memcpy(out, in, len);
		return len;
	case IMAP_FILTER_FIELDS:
	case IMAP_FILTER_FIELDS_NOT:
		return fields_run(f, in, len, out);
	case IMAP_FILTER_BASE64:
		return base64_run(f, in, len, out);
	case IMAP_FILTER_QP:
		return qp_run(f, in, len, out);
	}
	panic("imap_fetch_filter_run: kind %d", (int)f->kind);
}

size_t
imap_fetch_filter_end(struct imap_filter *f, char *out)
{
	size_t o = 0;

	switch (f->kind) {
	case IMAP_FILTER_COPY:
		break;
	case IMAP_FILTER_FIELDS:
	case IMAP_FILTER_FIELDS_NOT:
		/* A last line without a colon or line end. */
		if ((f->state == F_NAME || f->state == F_BLANK_CR) &&
		    f->kind == IMAP_FILTER_FIELDS_NOT) {
			memcpy(out, f->buf, f->nbuf);
			o = f->nbuf;
		}
		f->nbuf = 0;
		break;
	case IMAP_FILTER_BASE64:
		o = b64_flush(f, out);
		break;
	case IMAP_FILTER_QP:
		if (f->state == Q_EQ || f->state == Q_EQ_WS) {
			out[o++] = '=';
		} else if (f->state == Q_EQ_HEX) {
			out[o++] = '=';
			out[o++] = (char)f->acc;
		}
		/* Trailing white space at the end is dropped. */
		f->nbuf = 0;
		f->state = Q_TEXT;
		break;
	}
	return o;
}

int
imap_fetch_filter_cte(const char *cte, enum imap_filter_kind *kind_out)
{
	/* RFC 2045 §6.1; an absent field means 7bit (§6.1 last
	 * paragraph). */
	if (*cte == '\0' || strcmp(cte, "7bit") == 0 ||
	    strcmp(cte, "8bit") == 0 || strcmp(cte, "binary") == 0) {
		*kind_out = IMAP_FILTER_COPY;
		return 0;
	}
	if (strcmp(cte, "base64") == 0) {
		*kind_out = IMAP_FILTER_BASE64;
		return 0;
	}
	if (strcmp(cte, "quoted-printable") == 0) {
		*kind_out = IMAP_FILTER_QP;
		return 0;
	}
	return -1;
}

/* Skips white space, folds and comments (RFC 5322 §3.2.2 CFWS) of a field
 * value from h[i]; a line break not followed by white space ends it. */
static size_t
skip_cfws(const char *h, size_t len, size_t i)
{
	unsigned depth = 0;

	while (i < len) {
		char c = h[i];

		if (c == '\r' || c == '\n') {
			size_t j = i + (c == '\r' && i + 1 < len &&
			    h[i + 1] == '\n' ? 2 : 1);

			if (j >= len || (h[j] != ' ' && h[j] != '\t'))
				return len;
			i = j;
		} else if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == ')')
				depth--;
			else if (c == '(' && depth < 64)
				depth++;
			i++;
		} else if (c == ' ' || c == '\t') {
			i++;
		} else if (c == '(') {
			depth++;
			i++;
		} else {
			break;
		}
	}
	return i;
}

bool
imap_fetch_header_value(const char *hdr, size_t len, const char *name,
    char *out, size_t outlen)
{
	size_t nlen = strlen(name), i = 0;

	while (i < len) {
		const char *nl = memchr(hdr + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - hdr) : len;
		size_t j = i + nlen, o = 0;

		if (end - i > nlen && strncasecmp(hdr + i, name, nlen) == 0) {
			while (j < end && (hdr[j] == ' ' || hdr[j] == '\t'))
				j++;
			if (j < end && hdr[j] == ':') {
				j = skip_cfws(hdr, len, j + 1);
				while (j < len && o + 1 < outlen &&
				    strchr(" \t\r\n;(", hdr[j]) == NULL) {
					char c = hdr[j++];

					out[o++] = c >= 'A' && c <= 'Z' ?
					    (char)(c - 'A' + 'a') : c;
				}
				out[o] = '\0';
				return true;
			}
		}
		/* A blank line ends the header. */
		if (end == i || (end == i + 1 && hdr[i] == '\r'))
			break;
		i = end + 1;
	}
	return false;
}

size_t
imap_fetch_header_end(const char *buf, size_t len, int *state)
{
	/* *state: 0 at a line start, 1 at a line start after CR, 2 inside
	 * a line. A line that is empty but for CR LF (or LF) ends the
	 * header, as in mime_scan.c. */
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (c == '\n' && *state != 2)
			return i + 1;
		if (c == '\n')
			*state = 0;
		else if (c == '\r' && *state == 0)
			*state = 1;
		else
			*state = 2;
	}
	return SIZE_MAX;
}

char *
imap_fetch_set_format(const uint32_t *v, size_t n)
{
	/* Each range is at most "4294967295:4294967295,". */
	char *s = xmalloc(n * 22 + 1), *p = s;
	size_t i = 0;

	*p = '\0';
	while (i < n) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (p != s)
			*p++ = ',';
		if (j == i)
			p += sprintf(p, "%u", v[i]);
		else
			p += sprintf(p, "%u:%u", v[i], v[j]);
		i = j + 1;
	}
	return s;
}
