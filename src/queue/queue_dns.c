/*
 * queue_dns: asynchronous DNS for the queue runner with c-ares, driven by
 * the runner's event_base: c-ares says which sockets it wants watched
 * (sock_state_cb), libevent tells it when they are ready, and a timer runs
 * its retransmissions and timeouts. MX lookups follow RFC 5321 §5.1 (by
 * preference; no MX: the domain itself) and RFC 7505 (null MX).
 */
#include "queue/queue_int.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>
#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"

/* c-ares uses a handful of sockets (one UDP, one TCP per server). */
#define DNS_SOCKS_MAX 16

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	short what;
};

struct queue_dns {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct dns_sock socks[DNS_SOCKS_MAX];
	bool is_freeing;
};

static void timer_arm(struct queue_dns *dns);

static void
on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct queue_dns *dns = arg;

	ares_process_fd(dns->channel,
	    (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_arm(dns);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct queue_dns *dns = arg;

	(void)fd;
	(void)what;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_arm(dns);
}

static void
timer_arm(struct queue_dns *dns)
{
	struct timeval tv, max = { 1, 0 }, *t;

	if (dns->is_freeing)
		return;
	t = ares_timeout(dns->channel, &max, &tv);
	event_add(dns->timer, t);
}

/* c-ares: watch fd for reading and/or writing, or no longer. */
static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct queue_dns *dns = data;
	struct dns_sock *slot = NULL, *free_slot = NULL;
	short what = (short)((readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0));

	for (size_t i = 0; i < DNS_SOCKS_MAX; i++) {
		if (dns->socks[i].ev != NULL && dns->socks[i].fd == fd)
			slot = &dns->socks[i];
		else if (dns->socks[i].ev == NULL && free_slot == NULL)
			free_slot = &dns->socks[i];
	}
	if (slot != NULL && slot->what != what) {
		event_free(slot->ev);
		slot->ev = NULL;
		free_slot = slot;
		slot = NULL;
	}
	if (what == 0 || slot != NULL)
		return;
	if (free_slot == NULL) {
		/* Cannot happen with c-ares' socket use; the query then
		 * times out rather than hang. */
		log_error(NULL, "queue.dns error=\"too many sockets\"");
		return;
	}
	free_slot->fd = fd;
	free_slot->what = what;
	free_slot->ev = event_new(dns->base, fd, what | EV_PERSIST, on_sock,
	    dns);
	event_add(free_slot->ev, NULL);
}

struct queue_dns *
queue_dns_new(struct event_base *base, const char *server, uint16_t port,
    char *err, size_t errlen)
{
	struct queue_dns *dns = xcalloc(1, sizeof(*dns));
	struct ares_options opts;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(dns);
		return NULL;
	}
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = dns;
	opts.timeout = 3000;	/* ms per try */
	opts.tries = 3;
	rc = ares_init_options(&dns->channel, &opts,
	    ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(dns);
		return NULL;
	}
	if (server != NULL) {
		char csv[128];
		bool is_v6 = strchr(server, ':') != NULL;

		snprintf(csv, sizeof(csv), is_v6 ? "[%s]:%u" : "%s:%u",
		    server, (unsigned)port);
		rc = ares_set_servers_ports_csv(dns->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: resolver %s: %s", csv,
			    ares_strerror(rc));
			ares_destroy(dns->channel);
			free(dns);
			return NULL;
		}
	}
	dns->base = base;
	dns->timer = evtimer_new(base, on_timer, dns);
	return dns;
}

void
queue_dns_free(struct queue_dns **dnsp)
{
	struct queue_dns *dns = *dnsp;

	if (dns == NULL)
		return;
	*dnsp = NULL;
	dns->is_freeing = true;
	/* Calls every pending callback with ARES_EDESTRUCTION. */
	ares_destroy(dns->channel);
	for (size_t i = 0; i < DNS_SOCKS_MAX; i++) {
		if (dns->socks[i].ev != NULL)
			event_free(dns->socks[i].ev);
	}
	event_free(dns->timer);
	free(dns);
}

static enum queue_dns_result
result_of(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return QUEUE_DNS_OK;
	case ARES_ENOTFOUND:
		return QUEUE_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return QUEUE_DNS_NODATA;
	default:
		return QUEUE_DNS_TEMP;
	}
}

/* ---- MX ------------------------------------------------------------- */

/* A lookup's answer waits in its request until the loop's next turn, so
 * that a callback never runs inside queue_dns_mx() or queue_dns_addr()
 * (c-ares answers some at once: /etc/hosts, a channel being destroyed). */
struct mx_req {
	struct queue_dns *dns;
	queue_dns_mx_cb cb;
	void *arg;
	enum queue_dns_result res;
	struct queue_mx mx[QUEUE_DNS_HOSTS_MAX];
	size_t n;
};

static void
on_mx_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct mx_req *req = arg;

	(void)fd;
	(void)what;
	req->cb(req->arg, req->res, req->mx, req->n);
	for (size_t i = 0; i < req->n; i++)
		free(req->mx[i].host);
	free(req);
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct queue_mx *x = a, *y = b;

	return (int)x->pref - (int)y->pref;
}

static void
on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_req *req = arg;
	struct ares_mx_reply *replies = NULL;
	struct queue_mx mx[QUEUE_DNS_HOSTS_MAX];
	enum queue_dns_result res = result_of(status);
	size_t n = 0, total = 0;
	bool is_null = false;

	(void)timeouts;
	if (res == QUEUE_DNS_OK) {
		int rc = ares_parse_mx_reply(abuf, alen, &replies);

		if (rc != ARES_SUCCESS)
			res = rc == ARES_ENODATA ? QUEUE_DNS_NODATA :
			    QUEUE_DNS_TEMP;
	}
	for (struct ares_mx_reply *m = replies; m != NULL; m = m->next) {
		total++;
		/* RFC 7505 §3: a single MX whose exchange is the root. */
		if (m->host == NULL || m->host[0] == '\0' ||
		    strcmp(m->host, ".") == 0) {
			is_null = true;
			continue;
		}
		if (n < QUEUE_DNS_HOSTS_MAX) {
			mx[n].host = m->host;
			mx[n].pref = m->priority;
			n++;
		}
	}
	if (res == QUEUE_DNS_OK && is_null && total == 1)
		res = QUEUE_DNS_NULL_MX;
	else if (res == QUEUE_DNS_OK && n == 0)
		res = QUEUE_DNS_NODATA;
	/* Equal preferences keep the answer's order, which servers rotate
	 * (RFC 5321 §5.1 asks for randomness among equals). */
	if (res == QUEUE_DNS_OK) {
		for (size_t i = 1; i < n; i++) {
			for (size_t j = i; j > 0 &&
			    mx_cmp(&mx[j - 1], &mx[j]) > 0; j--) {
				struct queue_mx t = mx[j];

				mx[j] = mx[j - 1];
				mx[j - 1] = t;
			}
		}
	}
	req->res = res;
	req->n = res == QUEUE_DNS_OK ? n : 0;
	for (size_t i = 0; i < req->n; i++) {
		req->mx[i].host = xstrdup(mx[i].host);
		req->mx[i].pref = mx[i].pref;
	}
	if (replies != NULL)
		ares_free_data(replies);
	if (req->dns->is_freeing) {
		on_mx_deliver(-1, 0, req);
		return;
	}
	if (event_base_once(req->dns->base, -1, EV_TIMEOUT, on_mx_deliver, req,
	    NULL) < 0)
		panic("queue: event_base_once failed");
}

void
queue_dns_mx(struct queue_dns *dns, const char *domain, queue_dns_mx_cb cb,
    void *arg)
{
	struct mx_req *req = xcalloc(1, sizeof(*req));

	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	/* ares_query, not ares_search: the domain is complete, no search
	 * list applies (RFC 5321 §5.1). */
	ares_query(dns->channel, domain, ns_c_in, ns_t_mx, on_mx, req);
	timer_arm(dns);
}

/* ---- Addresses ------------------------------------------------------ */

struct addr_req {
	struct queue_dns *dns;
	queue_dns_addr_cb cb;
	void *arg;
	enum queue_dns_result res;
	struct sockaddr_storage addrs[QUEUE_DNS_ADDRS_MAX];
	size_t n;
};

static void
on_addr_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct addr_req *req = arg;

	(void)fd;
	(void)what;
	req->cb(req->arg, req->res, req->addrs, req->n);
	free(req);
}

static void
on_addrinfo(void *arg, int status, int timeouts,
    struct ares_addrinfo *result)
{
	struct addr_req *req = arg;
	struct sockaddr_storage *addrs = req->addrs;
	enum queue_dns_result res = result_of(status);
	size_t n = 0;

	(void)timeouts;
	if (result != NULL) {
		for (struct ares_addrinfo_node *a = result->nodes; a != NULL &&
		    n < QUEUE_DNS_ADDRS_MAX; a = a->ai_next) {
			if ((a->ai_family != AF_INET &&
			    a->ai_family != AF_INET6) ||
			    a->ai_addrlen > sizeof(addrs[0]))
				continue;
			memset(&addrs[n], 0, sizeof(addrs[n]));
			memcpy(&addrs[n], a->ai_addr, a->ai_addrlen);
			n++;
		}
		ares_freeaddrinfo(result);
	}
	if (res == QUEUE_DNS_OK && n == 0)
		res = QUEUE_DNS_NODATA;
	req->res = res;
	req->n = res == QUEUE_DNS_OK ? n : 0;
	if (req->dns->is_freeing) {
		on_addr_deliver(-1, 0, req);
		return;
	}
	if (event_base_once(req->dns->base, -1, EV_TIMEOUT, on_addr_deliver,
	    req, NULL) < 0)
		panic("queue: event_base_once failed");
}

void
queue_dns_addr(struct queue_dns *dns, const char *host, queue_dns_addr_cb cb,
    void *arg)
{
	struct addr_req *req = xcalloc(1, sizeof(*req));
	struct ares_addrinfo_hints hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* A numeric host (an address literal) needs no query. */
	hints.ai_flags = ARES_AI_NOSORT;
	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	ares_getaddrinfo(dns->channel, host, NULL, &hints, on_addrinfo, req);
	timer_arm(dns);
}
