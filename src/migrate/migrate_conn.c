/*
 * migrate_conn: the blocking connection to a source server. A CLI tool
 * copying one account per thread has no need of an event loop; every read
 * and write is bounded by the socket's timeouts instead (each answer as a
 * whole by a deadline: see answer_time_left), and the input
 * buffer by its cap.
 */
#include "migrate/migrate_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "net/net.h"

static void
answer_start(struct migrate_conn *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	c->got = 0;
}

/* Bounds the next read by what is left of the answer's time; false when
 * none is left. */
static bool
answer_time_left(struct migrate_conn *c)
{
	struct timespec now;
	double elapsed, budget, left;
	struct timeval tv;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - c->start.tv_sec) +
	    (double)(now.tv_nsec - c->start.tv_nsec) / 1e9;
	budget = (double)c->timeout_secs + (double)c->got / MIGRATE_MIN_RATE;
	left = budget - elapsed;
	if (left <= 0)
		return false;
	if (left > c->timeout_secs)
		left = c->timeout_secs;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return true;
}

int
migrate_conn_open(struct migrate_conn *c, const char *host, uint16_t port,
    int timeout_secs, size_t in_cap, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = timeout_secs };
	char service[8];
	int rc, last = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->host = host;
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);

		if (fd < 0) {
			last = errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO bounds connect(2) too. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
			break;
		}
		last = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(err, errlen, "cannot connect to %s port %u: %s", host,
		    (unsigned)port, strerror(last == EINPROGRESS ? ETIMEDOUT :
		    last));
		return -1;
	}
	buf_init(&c->in, in_cap);
	c->timeout_secs = timeout_secs > 0 ? timeout_secs : 60;
	answer_start(c);
	return 0;
}

int
migrate_conn_tls(struct migrate_conn *c, const char *ca_file,
    bool is_insecure, char *err, size_t errlen)
{
	buf_clear(&c->in);
	answer_start(c);
	c->tls = net_tls_stream_new(c->fd, c->host, ca_file, is_insecure, err,
	    errlen);
	return c->tls != NULL ? 0 : -1;
}

ssize_t
migrate_conn_read(struct migrate_conn *c)
{
	size_t room = buf_room(&c->in), want;
	char tmp[64 * 1024];
	ssize_t n;

	if (room == 0)
		return -1;
	if (!answer_time_left(c)) {
		errno = ETIMEDOUT;
		return -1;
	}
	want = room < sizeof(tmp) ? room : sizeof(tmp);
	if (c->tls != NULL)
		n = net_tls_stream_read(c->tls, tmp, want);
	else {
		do
			n = read(c->fd, tmp, want);
		while (n < 0 && errno == EINTR);
	}
	if (n > 0 && buf_append(&c->in, tmp, (size_t)n) < 0)
		return -1;
	if (n > 0)
		c->got += (uint64_t)n;
	return n;
}

int
migrate_conn_write(struct migrate_conn *c, const void *data, size_t len)
{
	const char *p = data;

	answer_start(c);	/* what comes next answers this */
	if (c->tls != NULL)
		return net_tls_stream_write(c->tls, data, len);
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
migrate_conn_close(struct migrate_conn *c)
{
	net_tls_stream_free(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	/* What the source sent may hold message text: wipe before freeing. */
	if (c->in.data != NULL)
		secret_wipe(c->in.data, c->in.size);
	buf_deinit(&c->in);
}
