/*
 * http_parser: an incremental, strict HTTP/1.1 request parser (RFC 9112)
 * for the http listeners. It is fed the connection's input buffer, takes
 * bytes out of it up to the end of one request (never further: pipelined
 * requests stay in the buffer), and keeps its own copies, so the request
 * stays valid until http_parser_next(). Everything is bounded by struct
 * http_limits before memory is taken.
 *
 * Strict on purpose, the smuggling rules of RFC 9112 §6.3 and §11.2 and
 * more: every line ends in CRLF (a bare CR or LF is an error, never a line
 * end), no obs-fold, no white space before a header's colon, no control
 * characters in values, one Content-Length of plain digits, and no
 * Transfer-Encoding at all (501; with a Content-Length, 400). Nothing
 * postern serves needs a chunked body: Autodiscover's request is a small
 * XML document every client sends with a Content-Length.
 *
 * Used by one session on one thread; no state is shared.
 */
#ifndef POSTERN_HTTP_PARSER_H
#define POSTERN_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/parse.h"

enum http_method {
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_OTHER,	/* a valid token we do not serve: 405 */
};

struct http_limits {
	size_t line_max;	/* request line, CRLF included: else 414 */
	size_t head_max;	/* request line and headers: else 431 */
	size_t headers_max;	/* header fields: else 431 */
	size_t body_max;	/* Content-Length: else 413 */
};

struct http_header {
	const char *name;	/* as sent */
	const char *value;	/* leading and trailing white space cut */
};

struct http_request {
	enum http_method method;
	const char *method_name;
	const char *target;	/* origin-form, as sent: path and query */
	const char *path;	/* the target up to '?' */
	const char *query;	/* after '?', or NULL */
	unsigned minor;		/* HTTP/1.minor */
	const struct http_header *headers;
	size_t nheaders;
	const char *host;	/* the Host field, or NULL */
	bool is_keep_alive;	/* the connection may carry another */
	const char *body;	/* Content-Length bytes (not NUL-ended) */
	size_t body_len;
};

enum http_parser_state {
	HTTP_PARSER_HEAD,
	HTTP_PARSER_BODY,
	HTTP_PARSER_DONE,
	HTTP_PARSER_ERROR,
};

struct http_parser {
	struct http_limits lim;
	enum http_parser_state state;
	char *head;		/* lim.head_max + 1 bytes */
	size_t head_len;
	size_t empty_lines;	/* CRLFs before the request line */
	bool has_lead_cr;	/* one of them is half read */
	bool has_line;		/* the request line is complete */
	struct http_header *headers;	/* lim.headers_max */
	char *path_copy;
	char *body;
	size_t body_need;
	bool is_continue_due;	/* Expect: 100-continue, not yet answered */
	struct http_request req;
	int status;		/* with PARSE_ERROR: 400, 413, 414, ... */
	const char *error;	/* with PARSE_ERROR: a sentence */
};

void http_parser_init(struct http_parser *p, const struct http_limits *lim);
void http_parser_deinit(struct http_parser *p);

/* Takes bytes from in (buf_consume) up to the end of one request. Returns
 * PARSE_DONE once it is complete (p->req), PARSE_MORE while bytes are
 * missing, or PARSE_ERROR with p->status and p->error set; an error is
 * final (the connection is to be closed after the error reply). Bytes
 * that the parser does not need stay in in. */
enum parse_rc http_parser_feed(struct http_parser *p, struct buf *in);

/* Whether a request line has begun (something of a request is held). */
bool is_http_parser_started(const struct http_parser *p);

/* Whether the client waits for "100 Continue" before sending the body
 * (RFC 9110 §10.1.1); true once per request, then false. */
bool http_parser_take_continue(struct http_parser *p);

/* Forgets the request p->req; ready for the next one. */
void http_parser_next(struct http_parser *p);

/* The first header named name (any case), or NULL. */
const char *http_request_header(const struct http_request *r,
    const char *name);

/* Whether a comma-separated list value holds token (any case), e.g.
 * Connection: close or Accept-Encoding: gzip (q=0 counts as absent). */
bool has_http_list_token(const char *value, const char *token);

#endif
