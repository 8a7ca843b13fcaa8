/*
 * load_net: what the bench's load generators share. A blocking client
 * connection (plain or TLS), a line reader with its own buffer, timing
 * and percentiles. Header-only (static functions) so that each load
 * generator is one .c file plus this header.
 */
#ifndef BENCH_LOAD_NET_H
#define BENCH_LOAD_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Longest line we accept from a server; a longer one is an error. */
#define LOAD_LINE_MAX 65536
#define LOAD_BUF_SIZE (2 * LOAD_LINE_MAX)

struct load_conn {
	int fd;
	SSL *ssl;
	char *buf;	/* cap bytes, allocated by load_conn_open */
	size_t cap;
	size_t off;	/* first unread byte */
	size_t len;	/* bytes in buf */
	uint64_t bytes_in;
};

static inline double
load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void
load_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static inline void *
load_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		load_die("out of memory");
	return p;
}

/* Connects to 127.0.0.1:port (from source, a dotted address, if not
 * NULL); with ctx, does the TLS handshake. Returns 0 or -1. */
static inline int
load_conn_open(struct load_conn *c, const char *host, int port,
    const char *source, SSL_CTX *ctx)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1;

	c->off = c->len = 0;
	c->bytes_in = 0;
	c->ssl = NULL;
	if (c->buf == NULL) {
		if (c->cap == 0)
			c->cap = LOAD_BUF_SIZE;
		c->buf = load_xcalloc(1, c->cap);
	}
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (source != NULL) {
		struct sockaddr_in src = { .sin_family = AF_INET };

		inet_pton(AF_INET, source, &src.sin_addr);
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			goto fail;
	}
	sa.sin_port = htons(port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (ctx != NULL) {
		c->ssl = SSL_new(ctx);
		SSL_set_fd(c->ssl, c->fd);
		if (SSL_connect(c->ssl) != 1)
			goto fail;
	}
	return 0;
fail:
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	return -1;
}

/* Closes the connection; the buffer stays for the next open. */
static inline void
load_conn_close(struct load_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
}

static inline int
load_conn_write(struct load_conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, len > INT32_MAX ?
			    INT32_MAX : (int)len);
			n = r > 0 ? r : -1;
		} else {
			n = write(c->fd, p, len);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int
load_conn_printf(struct load_conn *c, const char *fmt, ...)
{
	char line[LOAD_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return load_conn_write(c, line, (size_t)n);
}

/* Reads more bytes into the buffer. Returns the count, 0 at EOF, -1. */
static inline ssize_t
load_conn_fill(struct load_conn *c)
{
	ssize_t n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == c->cap)
		return -1;
	for (;;) {
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, c->buf + c->len,
			    (int)(c->cap - c->len));
			n = r > 0 ? r : (SSL_get_error(c->ssl, r) ==
			    SSL_ERROR_ZERO_RETURN ? 0 : -1);
		} else {
			n = read(c->fd, c->buf + c->len,
			    c->cap - c->len);
			if (n < 0 && errno == EINTR)
				continue;
		}
		break;
	}
	if (n > 0) {
		c->len += (size_t)n;
		c->bytes_in += (uint64_t)n;
	}
	return n;
}

/* One line, CRLF included (not NUL-terminated; valid until the next
 * read on c). Returns its length (*line_out set), or -1 on EOF, error or a line
 * longer than LOAD_LINE_MAX. */
static inline ssize_t
load_conn_line(struct load_conn *c, char **line_out)
{
	size_t scanned = 0;

	for (;;) {
		char *start = c->buf + c->off;
		char *nl = memchr(start + scanned, '\n',
		    c->len - c->off - scanned);

		if (nl != NULL) {
			size_t n = (size_t)(nl - start) + 1;

			*line_out = start;
			c->off += n;
			return (ssize_t)n;
		}
		scanned = c->len - c->off;
		if (scanned > LOAD_LINE_MAX || scanned >= c->cap)
			return -1;
		if (load_conn_fill(c) <= 0)
			return -1;
	}
}

/* Skips exactly n bytes (an IMAP literal). Returns 0 or -1. */
static inline int
load_conn_skip(struct load_conn *c, uint64_t n)
{
	while (n > 0) {
		size_t have = c->len - c->off;

		if (have == 0) {
			if (load_conn_fill(c) <= 0)
				return -1;
			continue;
		}
		if (have > n)
			have = (size_t)n;
		c->off += have;
		n -= have;
	}
	return 0;
}

static inline bool
load_starts(const char *line, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(line, prefix, n) == 0;
}

/* Latencies of one kind of operation, in seconds; bounded. */
#define LOAD_SAMPLES_MAX (4u << 20)

struct load_lat {
	double *v;
	size_t n, cap;
};

static inline void
load_lat_add(struct load_lat *l, double s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;

		if (cap > LOAD_SAMPLES_MAX)
			return;
		l->v = realloc(l->v, cap * sizeof(*l->v));
		if (l->v == NULL)
			load_die("out of memory");
		l->cap = cap;
	}
	l->v[l->n++] = s;
}

static inline int
load_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) in milliseconds; sorts l. */
static inline double
load_lat_ms(struct load_lat *l, double q)
{
	size_t i;

	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), load_cmp_double);
	i = (size_t)(q * (double)(l->n - 1) + 0.5);
	return l->v[i] * 1000.0;
}

/* Base64 of len bytes of in into out (room for 4 * ceil(len / 3) + 1). */
static inline void
load_base64(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*out++ = tab[in[i] >> 2];
		*out++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*out++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*out++ = tab[in[i + 2] & 63];
	}
	if (i < len) {
		*out++ = tab[in[i] >> 2];
		if (i + 1 < len) {
			*out++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*out++ = tab[(in[i + 1] & 15) << 2];
		} else {
			*out++ = tab[(in[i] & 3) << 4];
			*out++ = '=';
		}
		*out++ = '=';
	}
	*out = '\0';
}

#endif
