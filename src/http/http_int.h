/*
 * http_int: what the files of src/http share: the session, a growing
 * output string with XML and JSON escaping, and the handlers of each
 * endpoint (http_autoconfig.c, http_metrics.c).
 */
#ifndef POSTERN_HTTP_INT_H
#define POSTERN_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/http.h"
#include "http/http_parser.h"
#include "lib/config.h"

/* A growing string for response bodies; _free owns data. */
struct http_str {
	char *data;
	size_t len;
	size_t size;
};

void http_str_add(struct http_str *s, const char *p, size_t n);
void http_str_printf(struct http_str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Escapes for XML text and attribute values (&, <, >, ", '); bytes that
 * XML 1.0 forbids (controls but tab, CR, LF) become U+FFFD. */
void http_str_xml(struct http_str *s, const char *text);
/* Escapes for a JSON string (RFC 8259 §7), quotes not included. */
void http_str_json(struct http_str *s, const char *text);
void http_str_free(struct http_str *s);

struct http_session {
	struct net_conn *conn;
	struct http_ctx *ctx;
	const struct config *cfg;
	const struct config_listener *listener;
	const char *sid;
	struct http_parser parser;
	unsigned nrequests;
	bool is_timing;			/* a request has begun */
	struct timespec started;	/* ... at this time */
};

/* A response to send. body is borrowed; extra holds whole header lines
 * ("Allow: GET\r\n"), or NULL. */
struct http_response {
	int status;
	const char *type;	/* Content-Type */
	const char *body;
	size_t len;
	const char *extra;
	bool is_close;		/* close the connection after it */
};

/* Sends r for req (HEAD: headers only), logs the access line and closes
 * the connection when r asks or the request cannot keep it alive. */
void http_respond(struct http_session *s, const struct http_request *req,
    const struct http_response *r);
/* A short error: JSON {"error": status, "message": text}. */
void http_respond_error(struct http_session *s,
    const struct http_request *req, int status, const char *message,
    const char *extra);

/* Endpoints. Each sends exactly one response. */
void http_autoconfig_thunderbird(struct http_session *s,
    const struct http_request *req);
void http_autodiscover_xml(struct http_session *s,
    const struct http_request *req);
void http_autodiscover_json(struct http_session *s,
    const struct http_request *req);
void http_mobileconfig(struct http_session *s,
    const struct http_request *req);
void http_mtasts(struct http_session *s, const struct http_request *req);
void http_metrics(struct http_session *s, const struct http_request *req);
void http_healthz(struct http_session *s, const struct http_request *req);

/* The value of key in a query string (percent-decoded, '+' is a space;
 * key compared in any case), as a new string, or NULL when absent or not
 * decodable (a %00 or a bad escape: then *is_bad_out, if given, is set). */
char *http_query_get(const char *query, const char *key, bool *is_bad_out);

/* Percent-decodes n bytes of s ('+' is a space when is_form) into a new
 * string; NULL on a bad escape or a %00. */
char *http_percent_decode(const char *s, size_t n, bool is_form);

/* Counts a response of status for /metrics. */
void http_status_count(int status);
/* Responses sent by status class (1xx .. 5xx: index 1 .. 5). */
uint64_t http_status_class_total(unsigned cls);

#endif
