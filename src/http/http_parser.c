/*
 * http_parser: see http_parser.h. The head is copied byte by byte into
 * the parser's own buffer while the CR/LF discipline is checked, so that
 * a request fed one byte at a time is read exactly like one fed whole;
 * once the blank line arrives the head is parsed in place.
 */
#include "http/http_parser.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at
 * least one, after a POST body some old clients add a CRLF). */
#define EMPTY_LINES_MAX 4
/* Longest method token we look at; longer is refused. */
#define METHOD_MAX 16
/* Content-Length digits: more would not fit any limit. */
#define LENGTH_DIGITS_MAX 19

void
http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
	p->head = xmalloc(lim->head_max + 1);
	p->headers = xcalloc(lim->headers_max ? lim->headers_max : 1,
	    sizeof(*p->headers));
	p->state = HTTP_PARSER_HEAD;
}

void
http_parser_deinit(struct http_parser *p)
{
	free(p->head);
	free(p->headers);
	free(p->path_copy);
	free(p->body);
	memset(p, 0, sizeof(*p));
}

void
http_parser_next(struct http_parser *p)
{
	if (p->state == HTTP_PARSER_ERROR)
		return;
	free(p->path_copy);
	free(p->body);
	p->path_copy = NULL;
	p->body = NULL;
	p->head_len = 0;
	p->empty_lines = 0;
	p->has_lead_cr = false;
	p->has_line = false;
	p->body_need = 0;
	p->is_continue_due = false;
	memset(&p->req, 0, sizeof(p->req));
	p->state = HTTP_PARSER_HEAD;
}

bool
is_http_parser_started(const struct http_parser *p)
{
	return p->head_len > 0 || p->has_lead_cr || p->empty_lines > 0 ||
	    p->state == HTTP_PARSER_BODY;
}

bool
http_parser_take_continue(struct http_parser *p)
{
	bool due = p->is_continue_due && p->state == HTTP_PARSER_BODY;

	p->is_continue_due = false;
	return due;
}

static enum parse_rc
fail(struct http_parser *p, int status, const char *why)
{
	p->state = HTTP_PARSER_ERROR;
	p->status = status;
	p->error = why;
	return PARSE_ERROR;
}

/* RFC 9110 §5.6.2 tchar. */
static bool
is_tchar(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (!is_tchar((unsigned char)*s))
			return false;
	}
	return true;
}

bool
has_http_list_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);

	if (value == NULL)
		return false;
	while (*value != '\0') {
		size_t n;
		const char *params;

		value += strspn(value, " \t,");
		n = strcspn(value, ",");
		params = memchr(value, ';', n);
		size_t name_len = (size_t)((params ? params : value + n) -
		    value);

		while (name_len > 0 && (value[name_len - 1] == ' ' ||
		    value[name_len - 1] == '\t'))
			name_len--;
		if (name_len == tlen && strncasecmp(value, token, tlen) == 0) {
			/* RFC 9110 §12.4.2: q=0 means "not acceptable". */
			const char *q = params;
			bool is_zero = false;

			while (q != NULL && q < value + n) {
				q++;
				q += strspn(q, " \t");
				if (strncasecmp(q, "q=", 2) == 0) {
					const char *d = q + 2;

					is_zero = *d == '0';
					for (d++; *d == '.' || *d == '0'; d++)
						;
					if (is_zero && d < value + n &&
					    isdigit((unsigned char)*d))
						is_zero = false;
				}
				q = memchr(q, ';', (size_t)(value + n - q));
			}
			if (!is_zero)
				return true;
		}
		value += n;
	}
	return false;
}

const char *
http_request_header(const struct http_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

/* "GET /path?q HTTP/1.1", NUL-ended, CRLF cut. */
static enum parse_rc
parse_request_line(struct http_parser *p, char *line)
{
	struct http_request *r = &p->req;
	char *sp1 = strchr(line, ' '), *sp2, *version;
	char *q;

	if (sp1 == NULL || sp1 == line || sp1 - line > METHOD_MAX)
		return fail(p, 400, "The request line is not METHOD "
		    "TARGET HTTP/1.1.");
	*sp1 = '\0';
	if (!is_token(line))
		return fail(p, 400, "The method is not a token.");
	sp2 = strchr(sp1 + 1, ' ');
	if (sp2 == NULL || sp2 == sp1 + 1)
		return fail(p, 400, "The request line is not METHOD "
		    "TARGET HTTP/1.1.");
	*sp2 = '\0';
	version = sp2 + 1;
	r->method_name = line;
	r->target = sp1 + 1;
	if (strcmp(line, "GET") == 0)
		r->method = HTTP_METHOD_GET;
	else if (strcmp(line, "HEAD") == 0)
		r->method = HTTP_METHOD_HEAD;
	else if (strcmp(line, "POST") == 0)
		r->method = HTTP_METHOD_POST;
	else
		r->method = HTTP_METHOD_OTHER;
	/* Origin-form only (RFC 9112 §3.2.1): we are nobody's proxy, and
	 * the absolute form would give a second Host. */
	if (r->target[0] != '/')
		return fail(p, 400, "The request target must be a path "
		    "starting with /.");
	for (const char *t = r->target; *t; t++) {
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return fail(p, 400, "The request target holds a "
			    "character that must be percent-encoded.");
	}
	if (strncmp(version, "HTTP/", 5) != 0 ||
	    !isdigit((unsigned char)version[5]) || version[6] != '.' ||
	    !isdigit((unsigned char)version[7]) || version[8] != '\0')
		return fail(p, 400, "The request line does not end in "
		    "HTTP/1.1.");
	if (version[5] != '1')
		return fail(p, 505, "Only HTTP/1.0 and HTTP/1.1 are "
		    "served.");
	r->minor = (unsigned)(version[7] - '0');
	p->path_copy = xstrdup(r->target);
	q = strchr(p->path_copy, '?');
	if (q != NULL) {
		*q = '\0';
		r->query = r->target + (q - p->path_copy) + 1;
	}
	r->path = p->path_copy;
	return PARSE_DONE;
}

/* The header lines after the request line; lines are NUL-ended. */
static enum parse_rc
parse_headers(struct http_parser *p, char *s, char *end)
{
	struct http_request *r = &p->req;
	bool has_length = false, has_te = false, is_close = false;
	bool is_keep = false;
	size_t nhost = 0;

	while (s < end) {
		char *line = s, *colon, *value, *tail;
		size_t len = strlen(line);

		s += len + 2;
		if (len == 0)
			break;
		/* RFC 9112 §5.2: obs-fold is refused with 400. */
		if (line[0] == ' ' || line[0] == '\t')
			return fail(p, 400, "A header line starts with white "
			    "space (obsolete line folding is refused).");
		colon = strchr(line, ':');
		if (colon == NULL)
			return fail(p, 400, "A header line has no colon.");
		*colon = '\0';
		/* RFC 9112 §5.1: no white space before the colon. */
		if (!is_token(line))
			return fail(p, 400, "A header name is not a token (or "
			    "has white space before its colon).");
		value = colon + 1;
		value += strspn(value, " \t");
		tail = value + strlen(value);
		while (tail > value && (tail[-1] == ' ' || tail[-1] == '\t'))
			*--tail = '\0';
		for (const char *v = value; *v; v++) {
			unsigned char c = (unsigned char)*v;

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(p, 400, "A header value holds a "
				    "control character.");
		}
		if (r->nheaders == p->lim.headers_max)
			return fail(p, 431, "The request has too many header "
			    "fields.");
		p->headers[r->nheaders].name = line;
		p->headers[r->nheaders].value = value;
		r->nheaders++;

		if (strcasecmp(line, "Content-Length") == 0) {
			size_t n = 0, digits = strlen(value);

			if (has_length)
				return fail(p, 400, "The request has two "
				    "Content-Length fields.");
			has_length = true;
			if (digits == 0 || digits > LENGTH_DIGITS_MAX)
				return fail(p, 400, "Content-Length is not a "
				    "number.");
			for (const char *v = value; *v; v++) {
				if (!isdigit((unsigned char)*v))
					return fail(p, 400, "Content-Length is "
					    "not a number.");
				n = n * 10 + (size_t)(*v - '0');
				if (n > p->lim.body_max)
					return fail(p, 413, "The request body "
					    "is larger than this server takes.");
			}
			p->body_need = n;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			has_te = true;
		} else if (strcasecmp(line, "Host") == 0) {
			nhost++;
			r->host = value;
		} else if (strcasecmp(line, "Connection") == 0) {
			is_close |= has_http_list_token(value, "close");
			is_keep |= has_http_list_token(value, "keep-alive");
		} else if (strcasecmp(line, "Expect") == 0) {
			if (strcasecmp(value, "100-continue") != 0)
				return fail(p, 417, "Only Expect: 100-continue "
				    "is understood.");
			p->is_continue_due = true;
		}
	}
	/* RFC 9112 §6.3: both framings at once is the smuggling case. */
	if (has_te && has_length)
		return fail(p, 400, "The request has both Transfer-Encoding "
		    "and Content-Length.");
	if (has_te)
		return fail(p, 501, "Transfer-Encoding is not supported; "
		    "send the body with a Content-Length.");
	/* RFC 9112 §3.2: exactly one Host in HTTP/1.1. */
	if (nhost > 1 || (nhost == 0 && r->minor >= 1))
		return fail(p, 400, "The request must have one Host field.");
	r->is_keep_alive = r->minor >= 1 ? !is_close : is_keep && !is_close;
	r->headers = p->headers;
	return PARSE_DONE;
}

static enum parse_rc
parse_head(struct http_parser *p)
{
	char *s = p->head, *end = p->head + p->head_len;
	char *eol;

	/* Lines end in CRLF (checked as they came): cut them. */
	for (char *c = s; c < end; c++) {
		if (*c == '\r' || *c == '\n')
			*c = '\0';
		else if (*c == '\0')
			return fail(p, 400, "The request head holds a NUL "
			    "byte.");
	}
	eol = s + strlen(s);
	if (parse_request_line(p, s) != PARSE_DONE)
		return PARSE_ERROR;
	if (parse_headers(p, eol + 2, end) != PARSE_DONE)
		return PARSE_ERROR;
	if (p->body_need > 0) {
		p->body = xmalloc(p->body_need);
		p->state = HTTP_PARSER_BODY;
		return PARSE_MORE;
	}
	p->is_continue_due = false;
	p->state = HTTP_PARSER_DONE;
	return PARSE_DONE;
}

/* Copies head bytes from in; returns PARSE_DONE once the blank line ends
 * the head (the head is then parsed), PARSE_MORE, or PARSE_ERROR. Sets
 * *used_out to the bytes taken. */
static enum parse_rc
head_feed(struct http_parser *p, const char *data, size_t len,
    size_t *used_out)
{
	size_t i = 0;
	enum parse_rc rc = PARSE_MORE;

	while (i < len) {
		char ch = data[i];

		if (p->head_len == 0) {
			/* Empty lines before the request line. */
			if (p->has_lead_cr) {
				if (ch != '\n') {
					rc = fail(p, 400, "A bare CR in the "
					    "request.");
					break;
				}
				p->has_lead_cr = false;
				i++;
				if (++p->empty_lines > EMPTY_LINES_MAX) {
					rc = fail(p, 400, "Too many empty lines "
					    "before the request.");
					break;
				}
				continue;
			}
			if (ch == '\r') {
				p->has_lead_cr = true;
				i++;
				continue;
			}
		}
		if (p->head_len > 0 && p->head[p->head_len - 1] == '\r' &&
		    ch != '\n') {
			rc = fail(p, 400, "A bare CR in the request head.");
			break;
		}
		if (ch == '\n' && (p->head_len == 0 ||
		    p->head[p->head_len - 1] != '\r')) {
			rc = fail(p, 400, "A bare LF in the request head (lines "
			    "end in CRLF).");
			break;
		}
		if (!p->has_line && p->head_len >= p->lim.line_max) {
			rc = fail(p, 414, "The request line is too long.");
			break;
		}
		if (p->head_len >= p->lim.head_max) {
			rc = fail(p, 431, "The request head is too large.");
			break;
		}
		p->head[p->head_len++] = ch;
		i++;
		if (ch != '\n')
			continue;
		if (!p->has_line) {
			p->has_line = true;
			continue;
		}
		if (p->head_len >= 4 &&
		    memcmp(p->head + p->head_len - 4, "\r\n\r\n", 4) == 0) {
			p->head[p->head_len] = '\0';
			rc = parse_head(p);
			if (rc == PARSE_MORE)
				rc = PARSE_DONE;	/* the head, not the body */
			break;
		}
	}
	*used_out = i;
	return rc;
}

enum parse_rc
http_parser_feed(struct http_parser *p, struct buf *in)
{
	size_t used = 0;

	switch (p->state) {
	case HTTP_PARSER_ERROR:
		return PARSE_ERROR;
	case HTTP_PARSER_DONE:
		return PARSE_DONE;
	case HTTP_PARSER_HEAD: {
		enum parse_rc rc = head_feed(p, in->data, in->len, &used);

		buf_consume(in, used);
		if (rc != PARSE_DONE)
			return rc;
		if (p->state == HTTP_PARSER_DONE)
			return PARSE_DONE;
		break;
	}
	case HTTP_PARSER_BODY:
		break;
	}
	/* The body: exactly Content-Length bytes. */
	used = in->len < p->body_need - p->req.body_len ? in->len :
	    p->body_need - p->req.body_len;
	memcpy(p->body + p->req.body_len, in->data, used);
	p->req.body_len += used;
	buf_consume(in, used);
	p->req.body = p->body;
	if (p->req.body_len < p->body_need)
		return PARSE_MORE;
	p->state = HTTP_PARSER_DONE;
	return PARSE_DONE;
}
