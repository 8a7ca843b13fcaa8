/*
 * http_session: one HTTP/1.1 connection: the request loop (keep-alive,
 * one request at a time, the request deadline against clients that
 * trickle a request in), routing, and the response writer (security
 * headers, gzip, HEAD, the access log line). DESIGN.md, "The http layer".
 */
#include "http/http_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <zlib.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

/* Bodies shorter than this go uncompressed: gzip's own 18 bytes and the
 * CPU would cost more than they save. */
#define GZIP_MIN 256
/* Longest path written to the access log. */
#define LOG_PATH_MAX 200

static _Atomic uint64_t status_classes[6];

void
http_status_count(int status)
{
	unsigned cls = (unsigned)status / 100;

	if (cls >= 1 && cls <= 5)
		atomic_fetch_add_explicit(&status_classes[cls], 1,
		    memory_order_relaxed);
}

uint64_t
http_status_class_total(unsigned cls)
{
	return cls >= 1 && cls <= 5 ? atomic_load_explicit(
	    &status_classes[cls], memory_order_relaxed) : 0;
}

/* ---- Strings ---------------------------------------------------------- */

void
http_str_add(struct http_str *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->size) {
		size_t size = s->size ? s->size : 1024;

		while (size < s->len + n + 1)
			size *= 2;
		s->data = xrealloc(s->data, size);
		s->size = size;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

void
http_str_printf(struct http_str *s, const char *fmt, ...)
{
	va_list ap;
	char *t;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&t, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("http_str_printf: out of memory");
	http_str_add(s, t, (size_t)n);
	free(t);
}

void
http_str_xml(struct http_str *s, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		switch (*p) {
		case '&':
			http_str_add(s, "&amp;", 5);
			break;
		case '<':
			http_str_add(s, "&lt;", 4);
			break;
		case '>':
			http_str_add(s, "&gt;", 4);
			break;
		case '"':
			http_str_add(s, "&quot;", 6);
			break;
		case '\'':
			http_str_add(s, "&apos;", 6);
			break;
		default:
			/* XML 1.0 §2.2: no C0 controls but tab, LF, CR. */
			if ((*p < 0x20 && *p != '\t' && *p != '\n' &&
			    *p != '\r') || *p == 0x7f)
				http_str_add(s, "\xef\xbf\xbd", 3);
			else
				http_str_add(s, (const char *)p, 1);
		}
	}
}

void
http_str_json(struct http_str *s, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };

			http_str_add(s, e, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			http_str_printf(s, "\\u%04x", *p);
		} else if (*p == '<' || *p == '>' || *p == '&') {
			/* Harmless in JSON, but never markup if a client
			 * shows it as HTML. */
			http_str_printf(s, "\\u%04x", *p);
		} else {
			http_str_add(s, (const char *)p, 1);
		}
	}
}

void
http_str_free(struct http_str *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
http_percent_decode(const char *s, size_t n, bool is_form)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+' && is_form) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

char *
http_query_get(const char *query, const char *key, bool *is_bad_out)
{
	size_t klen = strlen(key);

	if (is_bad_out != NULL)
		*is_bad_out = false;
	if (query == NULL)
		return NULL;
	while (*query != '\0') {
		size_t n = strcspn(query, "&;");
		const char *eq = memchr(query, '=', n);

		if (eq != NULL && (size_t)(eq - query) == klen &&
		    strncasecmp(query, key, klen) == 0) {
			char *v = http_percent_decode(eq + 1, n - klen - 1,
			    true);

			if (v == NULL && is_bad_out != NULL)
				*is_bad_out = true;
			return v;
		}
		query += n;
		if (*query != '\0')
			query++;
	}
	return NULL;
}

/* ---- Responses -------------------------------------------------------- */

static const char *
status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static bool
is_compressible(const char *type)
{
	return type != NULL && (strncmp(type, "text/", 5) == 0 ||
	    strncmp(type, "application/xml", 15) == 0 ||
	    strncmp(type, "application/json", 16) == 0 ||
	    strncmp(type, "application/x-apple-aspen-config", 32) == 0);
}

/* gzip (RFC 1952) of body; NULL when zlib fails (sent uncompressed). */
static unsigned char *
gzip_make(const char *body, size_t len, size_t *len_out)
{
	z_stream z;
	uLong bound;
	unsigned char *out;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper, not zlib's. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	bound = deflateBound(&z, (uLong)len) + 32;
	out = xmalloc(bound);
	z.next_in = (Bytef *)(uintptr_t)body;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*len_out = z.total_out;
	deflateEnd(&z);
	return out;
}

static long
elapsed_ms(const struct http_session *s)
{
	struct timespec now;

	if (!s->is_timing)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - s->started.tv_sec) * 1000 +
	    (now.tv_nsec - s->started.tv_nsec) / 1000000);
}

/* The path as logged: never the query string (it names the address a
 * client asks about), at most LOG_PATH_MAX bytes, no quote or backslash
 * that would break the key=value line. */
static void
log_path(const struct http_request *req, char *out, size_t outlen)
{
	const char *p = req != NULL && req->path != NULL ? req->path : "-";
	size_t o = 0;

	for (; *p && o + 4 < outlen && o < LOG_PATH_MAX; p++) {
		if (*p == '"' || *p == '\\' || *p == '=')
			o += (size_t)snprintf(out + o, outlen - o, "%%%02X",
			    (unsigned char)*p);
		else
			out[o++] = *p;
	}
	out[o] = '\0';
}

void
http_respond(struct http_session *s, const struct http_request *req,
    const struct http_response *r)
{
	const char *body = r->body;
	size_t len = r->len;
	unsigned char *gz = NULL;
	bool is_head = req != NULL && req->method == HTTP_METHOD_HEAD;
	bool is_close = r->is_close || req == NULL || !req->is_keep_alive ||
	    s->nrequests + 1 >= s->cfg->http_requests ||
	    is_net_conn_closing(s->conn);
	bool is_gzip = false, can_vary = is_compressible(r->type);
	struct http_str h = { 0 };
	char date[64], path[LOG_PATH_MAX + 8];
	time_t now = time(NULL);
	struct tm tm;

	if (can_vary && req != NULL && len >= GZIP_MIN &&
	    has_http_list_token(http_request_header(req, "Accept-Encoding"),
	    "gzip")) {
		size_t glen;

		gz = gzip_make(body, len, &glen);
		if (gz != NULL) {
			body = (const char *)gz;
			len = glen;
			is_gzip = true;
		}
	}
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	http_str_printf(&h, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: postern\r\n",
	    r->status, status_text(r->status), date);
	if (r->type != NULL)
		http_str_printf(&h, "Content-Type: %s\r\n", r->type);
	http_str_printf(&h, "Content-Length: %zu\r\n", len);
	if (is_gzip)
		http_str_printf(&h, "Content-Encoding: gzip\r\n");
	if (can_vary)
		http_str_printf(&h, "Vary: Accept-Encoding\r\n");
	/* Answers name accounts and hosts: nobody should keep them. */
	http_str_printf(&h, "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: default-src 'none'; "
	    "frame-ancestors 'none'\r\n"
	    "Referrer-Policy: no-referrer\r\n");
	if (is_net_conn_tls(s->conn))
		http_str_printf(&h, "Strict-Transport-Security: "
		    "max-age=31536000\r\n");
	if (r->extra != NULL)
		http_str_add(&h, r->extra, strlen(r->extra));
	http_str_printf(&h, "Connection: %s\r\n\r\n",
	    is_close ? "close" : "keep-alive");
	net_conn_write(s->conn, h.data, h.len);
	if (!is_head && len > 0)
		net_conn_write(s->conn, body, len);
	http_status_count(r->status);
	metrics_add(METRIC_HTTP_REQUESTS, 1);
	log_path(req, path, sizeof(path));
	log_info(s->sid, "http.request method=%s path=\"%s\" status=%d "
	    "bytes=%zu ms=%ld%s", req != NULL ? req->method_name : "-", path,
	    r->status, is_head ? 0 : len, elapsed_ms(s),
	    is_gzip ? " gzip=yes" : "");
	http_str_free(&h);
	free(gz);
	if (is_close)
		net_conn_close(s->conn);
}

void
http_respond_error(struct http_session *s, const struct http_request *req,
    int status, const char *message, const char *extra)
{
	struct http_str b = { 0 };
	struct http_response r = {
		.status = status,
		.type = "application/json; charset=utf-8",
		.extra = extra,
		/* A request we could not read leaves the stream out of
		 * step: nothing after it can be trusted. */
		.is_close = req == NULL || status == 400 || status == 408 ||
		    status == 413 || status == 414 || status == 431 ||
		    status >= 500,
	};

	http_str_printf(&b, "{\"error\": %d, \"message\": \"", status);
	http_str_json(&b, message);
	http_str_add(&b, "\"}\n", 3);
	r.body = b.data;
	r.len = b.len;
	http_respond(s, req, &r);
	http_str_free(&b);
}

/* ---- Routing ---------------------------------------------------------- */

/* Port 80 beside 443: everything moves to HTTPS, on [server] hostname,
 * the name our certificate has (not the request's Host: autoconfig.DOMAIN
 * is a CNAME the certificate need not name; every autoconfiguration
 * request names the address in its query, so the domain is not lost),
 * on the first HTTPS listener's port. */
static void
redirect_https(struct http_session *s, const struct http_request *req)
{
	const struct config *cfg = s->cfg;
	unsigned port = 443;
	struct http_str loc = { 0 };
	struct http_str body = { 0 };
	struct http_response r = {
		.status = 301,
		.type = "text/plain; charset=utf-8",
	};

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		if (l->proto == CONFIG_PROTO_HTTP &&
		    l->tls == CONFIG_TLS_IMPLICIT && !l->is_metrics) {
			port = net_conn_listener_port(s->conn, l);
			break;
		}
	}
	http_str_printf(&loc, "Location: https://%s", cfg->hostname);
	if (port != 443)
		http_str_printf(&loc, ":%u", port);
	http_str_add(&loc, req->target, strlen(req->target));
	http_str_add(&loc, "\r\n", 2);
	http_str_printf(&body, "Moved to HTTPS.\n");
	r.extra = loc.data;
	r.body = body.data;
	r.len = body.len;
	http_respond(s, req, &r);
	http_str_free(&loc);
	http_str_free(&body);
}

/* ACME HTTP-01 (RFC 8555 §8.3): the CA fetches
 * http://NAME/.well-known/acme-challenge/TOKEN and wants the key
 * authorization, never a redirect to HTTPS (the certificate is what is
 * being obtained). Answered on every HTTP listener; the answer is no
 * secret (token and account key thumbprint), and only tokens of a pending
 * challenge of ours have one. */
static void
acme_challenge(struct http_session *s, const struct http_request *req)
{
	char *keyauth = net_acme_http01_get(req->path + 28);
	struct http_response r = {
		.status = 200,
		.type = "application/octet-stream",
	};

	if (keyauth == NULL) {
		http_respond_error(s, req, 404, "No such ACME challenge.",
		    NULL);
		return;
	}
	r.body = keyauth;
	r.len = strlen(keyauth);
	http_respond(s, req, &r);
	free(keyauth);
}

static void
route(struct http_session *s, const struct http_request *req)
{
	const char *path = req->path;
	bool is_get = req->method == HTTP_METHOD_GET ||
	    req->method == HTTP_METHOD_HEAD;

	if (req->method == HTTP_METHOD_OTHER) {
		http_respond_error(s, req, 405, "Only GET, HEAD and POST are "
		    "served.", "Allow: GET, HEAD, POST\r\n");
		return;
	}
	if (strncmp(path, "/.well-known/acme-challenge/", 28) == 0 &&
	    is_get) {
		acme_challenge(s, req);
		return;
	}
	if (s->listener->is_https_redirect) {
		redirect_https(s, req);
		return;
	}
	if (strcmp(path, "/.well-known/autoconfig/mail/config-v1.1.xml") ==
	    0 || strcmp(path, "/mail/config-v1.1.xml") == 0) {
		if (!is_get)
			goto get_only;
		http_autoconfig_thunderbird(s, req);
		return;
	}
	/* Outlook writes the path in any case. */
	if (strcasecmp(path, "/autodiscover/autodiscover.xml") == 0) {
		if (req->method != HTTP_METHOD_POST) {
			http_respond_error(s, req, 405, "Autodiscover takes a "
			    "POST of its request document.",
			    "Allow: POST\r\n");
			return;
		}
		http_autodiscover_xml(s, req);
		return;
	}
	if (strcasecmp(path, "/autodiscover/autodiscover.json") == 0 ||
	    strncasecmp(path, "/autodiscover/autodiscover.json/", 32) == 0) {
		if (!is_get)
			goto get_only;
		http_autodiscover_json(s, req);
		return;
	}
	if (strcmp(path, "/.well-known/mta-sts.txt") == 0) {
		if (!is_get)
			goto get_only;
		http_mtasts(s, req);
		return;
	}
	if (strcmp(path, "/mobileconfig") == 0) {
		if (!is_get)
			goto get_only;
		http_mobileconfig(s, req);
		return;
	}
	if (s->listener->is_metrics && strcmp(path, "/metrics") == 0) {
		if (!is_get)
			goto get_only;
		http_metrics(s, req);
		return;
	}
	if (s->listener->is_metrics && strcmp(path, "/healthz") == 0) {
		if (!is_get)
			goto get_only;
		http_healthz(s, req);
		return;
	}
	http_respond_error(s, req, 404, "Nothing is served at this path.",
	    NULL);
	return;
get_only:
	http_respond_error(s, req, 405, "This path answers GET and HEAD.",
	    "Allow: GET, HEAD\r\n");
}

/* ---- Session ---------------------------------------------------------- */

static void *
http_session_open(struct net_conn *c)
{
	struct http_session *s = xcalloc(1, sizeof(*s));
	const struct config *cfg = net_conn_config(c);
	struct http_limits lim = {
		.line_max = cfg->line_length,
		.head_max = cfg->http_header_size,
		.headers_max = cfg->http_headers,
		.body_max = cfg->http_body_size,
	};

	s->conn = c;
	s->ctx = net_conn_ctx(c);
	s->cfg = cfg;
	s->listener = net_conn_listener(c);
	s->sid = net_conn_sid(c);
	http_parser_init(&s->parser, &lim);
	return s;
}

static bool
is_request_late(const struct http_session *s)
{
	return s->is_timing && (uint64_t)elapsed_ms(s) >
	    s->cfg->http_request_timeout * 1000;
}

static void
http_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct http_session *s = arg;

	while (is_net_conn_feeding(c) && in->len > 0) {
		enum parse_rc rc;

		if (!s->is_timing) {
			s->is_timing = true;
			clock_gettime(CLOCK_MONOTONIC, &s->started);
		}
		rc = http_parser_feed(&s->parser, in);
		if (rc == PARSE_ERROR) {
			http_respond_error(s, NULL, s->parser.status,
			    s->parser.error, NULL);
			return;
		}
		if (rc == PARSE_MORE) {
			/* A request that trickles in a byte at a time keeps
			 * the idle timer young: this bounds it whole. */
			if (is_request_late(s)) {
				log_info(s->sid, "http.timeout during=request "
				    "seconds=%llu", (unsigned long long)
				    s->cfg->http_request_timeout);
				http_respond_error(s, NULL, 408, "The request "
				    "took too long to arrive.", NULL);
				return;
			}
			if (http_parser_take_continue(&s->parser))
				net_conn_printf(c, "HTTP/1.1 100 Continue"
				    "\r\n\r\n");
			if (!is_http_parser_started(&s->parser))
				s->is_timing = false;
			return;
		}
		route(s, &s->parser.req);
		s->nrequests++;
		s->is_timing = false;
		http_parser_next(&s->parser);
	}
}

static void
http_session_timeout(void *arg, struct net_conn *c)
{
	struct http_session *s = arg;

	(void)c;
	/* Idle between requests: close quietly. In the middle of one: say
	 * why (RFC 9110 §15.5.9). */
	if (is_http_parser_started(&s->parser))
		http_respond_error(s, NULL, 408, "The request took too long "
		    "to arrive.", NULL);
}

static void
http_session_shutdown(void *arg, struct net_conn *c)
{
	(void)arg;
	(void)c;
	/* Nothing to say between requests; the connection just closes
	 * (a client retries an idempotent request on a new one). */
}

static void
http_session_close(void *arg)
{
	struct http_session *s = arg;

	http_parser_deinit(&s->parser);
	free(s);
}

static void
http_session_refuse(struct net_conn *c, const char *reason)
{
	struct http_str b = { 0 };

	http_str_printf(&b, "{\"error\": 503, \"message\": \"");
	http_str_json(&b, reason);
	http_str_add(&b, "\"}\n", 3);
	net_conn_printf(c, "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nRetry-After: 60\r\n"
	    "Connection: close\r\n\r\n", b.len);
	net_conn_write(c, b.data, b.len);
	http_str_free(&b);
}

const struct net_session_ops http_session_ops = {
	.open = http_session_open,
	.input = http_session_input,
	.timeout = http_session_timeout,
	.shutdown = http_session_shutdown,
	.close = http_session_close,
	.refuse = http_session_refuse,
};
