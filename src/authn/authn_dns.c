/*
 * authn_dns: the DNS of the SPF service, for authn's pool threads. Each
 * check gets its own c-ares channel (c-ares 1.18 channels are not shared
 * between threads) on the queue's resolver ([queue] resolver, else the
 * system's); a query is sent and its sockets polled here, on the pool
 * thread, never on an event loop. poll(), not select(): a busy server's
 * descriptors pass FD_SETSIZE.
 */
#include "authn/authn_int.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#include "lib/util.h"

struct answer {
	bool is_done;
	int status;
	unsigned char *buf;
	int len;
};

int
authn_dns_library_init(char *err, size_t errlen)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);

	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

int
authn_dns_open(struct authn_dns_channel *c, const char *server,
    uint16_t port, double deadline, char *err, size_t errlen)
{
	struct ares_options opts;
	ares_channel ch;
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.timeout = 2000;	/* ms per try */
	opts.tries = 2;
	rc = ares_init_options(&ch, &opts, ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	if (server != NULL) {
		char csv[128];

		snprintf(csv, sizeof(csv), strchr(server, ':') != NULL ?
		    "[%s]:%u" : "%s:%u", server, (unsigned)port);
		rc = ares_set_servers_ports_csv(ch, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: resolver %s: %s", csv,
			    ares_strerror(rc));
			ares_destroy(ch);
			return -1;
		}
	}
	c->channel = ch;
	c->deadline = deadline;
	c->queries = 0;
	return 0;
}

void
authn_dns_close(struct authn_dns_channel *c)
{
	if (c->channel != NULL)
		ares_destroy((ares_channel)c->channel);
	c->channel = NULL;
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct answer *a = arg;

	(void)timeouts;
	a->is_done = true;
	a->status = status;
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0) {
		a->buf = xmalloc((size_t)alen);
		memcpy(a->buf, abuf, (size_t)alen);
		a->len = alen;
	}
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
rr_add(char **rrs, size_t *n, char *s)
{
	if (*n < AUTHN_SPF_RRS_MAX)
		rrs[(*n)++] = s;
	else
		free(s);
}

/* PTR: the names of the answer's records of the type (c-ares' PTR parser
 * folds several records into aliases of a hostent). */
static int
names_parse(const unsigned char *buf, int len, int type, char **rrs,
    size_t *n)
{
	const unsigned char *p = buf + NS_HFIXEDSZ, *end = buf + len;
	unsigned qd, an;
	char *name;
	long enc;

	if (len < NS_HFIXEDSZ)
		return -1;
	qd = (unsigned)(buf[4] << 8 | buf[5]);
	an = (unsigned)(buf[6] << 8 | buf[7]);
	for (unsigned i = 0; i < qd; i++) {
		if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS)
			return -1;
		ares_free_string(name);
		if (end - p < enc + 4)
			return -1;
		p += enc + 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned rtype, rdlen;

		if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS)
			return -1;
		ares_free_string(name);
		if (end - p < enc + 10)
			return -1;
		p += enc;
		rtype = (unsigned)(p[0] << 8 | p[1]);
		rdlen = (unsigned)(p[8] << 8 | p[9]);
		p += 10;
		if (end - p < (long)rdlen)
			return -1;
		if ((int)rtype == type) {
			if (ares_expand_name(p, buf, len, &name, &enc) !=
			    ARES_SUCCESS)
				return -1;
			rr_add(rrs, n, xstrdup(name));
			ares_free_string(name);
		}
		p += rdlen;
	}
	return 0;
}

/* The text of each TXT record: its strings joined (RFC 7208 §3.3). */
static int
txt_parse(const unsigned char *buf, int len, char **rrs, size_t *n)
{
	struct ares_txt_ext *txt = NULL;
	char *cur = NULL;
	size_t curlen = 0;

	if (ares_parse_txt_reply_ext(buf, len, &txt) != ARES_SUCCESS)
		return -1;
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start && cur != NULL) {
			rr_add(rrs, n, cur);
			cur = NULL;
			curlen = 0;
		}
		cur = xrealloc(cur, curlen + t->length + 1);
		memcpy(cur + curlen, t->txt, t->length);
		curlen += t->length;
		cur[curlen] = '\0';
	}
	if (cur != NULL)
		rr_add(rrs, n, cur);
	ares_free_data(txt);
	return 0;
}

static int
answer_parse(const unsigned char *buf, int len, enum authn_dns_type type,
    char **rrs, size_t *n)
{
	char addr[INET6_ADDRSTRLEN];

	switch (type) {
	case AUTHN_DNS_A: {
		struct ares_addrttl at[AUTHN_SPF_RRS_MAX];
		int na = AUTHN_SPF_RRS_MAX;

		if (ares_parse_a_reply(buf, len, NULL, at, &na) !=
		    ARES_SUCCESS)
			return -1;
		for (int i = 0; i < na; i++)
			rr_add(rrs, n, xstrdup(inet_ntop(AF_INET,
			    &at[i].ipaddr, addr, sizeof(addr))));
		return 0;
	}
	case AUTHN_DNS_AAAA: {
		struct ares_addr6ttl at[AUTHN_SPF_RRS_MAX];
		int na = AUTHN_SPF_RRS_MAX;

		if (ares_parse_aaaa_reply(buf, len, NULL, at, &na) !=
		    ARES_SUCCESS)
			return -1;
		for (int i = 0; i < na; i++)
			rr_add(rrs, n, xstrdup(inet_ntop(AF_INET6,
			    &at[i].ip6addr, addr, sizeof(addr))));
		return 0;
	}
	case AUTHN_DNS_MX: {
		struct ares_mx_reply *mx = NULL;

		if (ares_parse_mx_reply(buf, len, &mx) != ARES_SUCCESS)
			return -1;
		/* Every record is kept up to the cap: more than 10 is a
		 * permerror the evaluator must see (§4.6.4). */
		for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
			rr_add(rrs, n, xasprintf("%u %s", m->priority,
			    m->host[0] ? m->host : "."));
		ares_free_data(mx);
		return 0;
	}
	case AUTHN_DNS_TXT:
		return txt_parse(buf, len, rrs, n);
	case AUTHN_DNS_PTR:
		return names_parse(buf, len, ns_t_ptr, rrs, n);
	}
	return -1;
}

/* The smallest TTL of the answer's records of type (0 when unreadable). */
static uint32_t
answer_ttl(const unsigned char *buf, int len, int type)
{
	const unsigned char *p = buf + NS_HFIXEDSZ, *end = buf + len;
	unsigned qd, an;
	uint32_t min = 0;
	bool has = false;
	char *name;
	long enc;

	if (len < NS_HFIXEDSZ)
		return 0;
	qd = (unsigned)(buf[4] << 8 | buf[5]);
	an = (unsigned)(buf[6] << 8 | buf[7]);
	for (unsigned i = 0; i < qd; i++) {
		if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		if (end - p < enc + 4)
			return 0;
		p += enc + 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned rtype, rdlen;
		uint32_t ttl;

		if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		if (end - p < enc + 10)
			return 0;
		p += enc;
		rtype = (unsigned)(p[0] << 8 | p[1]);
		ttl = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
		    (uint32_t)p[6] << 8 | (uint32_t)p[7];
		rdlen = (unsigned)(p[8] << 8 | p[9]);
		p += 10;
		if (end - p < (long)rdlen)
			return 0;
		if ((int)rtype == type && (!has || ttl < min)) {
			min = ttl;
			has = true;
		}
		p += rdlen;
	}
	return min;
}

static int
type_code(enum authn_dns_type type)
{
	switch (type) {
	case AUTHN_DNS_A:
		return ns_t_a;
	case AUTHN_DNS_AAAA:
		return ns_t_aaaa;
	case AUTHN_DNS_MX:
		return ns_t_mx;
	case AUTHN_DNS_TXT:
		return ns_t_txt;
	default:
		return ns_t_ptr;
	}
}

/* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 by up to 31 places
 * (undefined behaviour, stopped by UBSan): the bits are tested unsigned. */
static bool
getsock_has(int bits, int shift)
{
	return ((unsigned)bits >> shift & 1u) != 0;
}

void
authn_dns_wait(void *channel, const bool *done, double deadline)
{
	ares_channel ch = channel;

	while (!*done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits, nfds = 0, ms;
		double left = deadline - now_mono();

		if (left <= 0) {
			ares_cancel(ch);	/* calls the callbacks */
			break;
		}
		bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			if (getsock_has(bits, i))
				ev |= POLLIN;
			if (getsock_has(bits, i + ARES_GETSOCK_MAXNUM))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = ev;
			pfd[nfds].revents = 0;
			nfds++;
		}
		if (nfds == 0)
			break;
		tvp = ares_timeout(ch, NULL, &tv);
		ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) :
		    1000;
		if (ms > (int)(left * 1000) + 1)
			ms = (int)(left * 1000) + 1;
		if (poll(pfd, (nfds_t)nfds, ms) <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < nfds; i++) {
			ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				r = pfd[i].fd;
			if (pfd[i].revents & POLLOUT)
				w = pfd[i].fd;
			if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
				ares_process_fd(ch, r, w);
		}
	}
}

enum authn_dns_rc
authn_dns_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct authn_dns_channel *c = arg;
	ares_channel ch = c->channel;
	struct answer a = { 0 };
	char **rrs;
	size_t n = 0;

	*rrs_out = NULL;
	*n_out = 0;
	c->ttl = 0;
	c->queries++;
	/* ares_query, not ares_search: names are complete. */
	ares_query(ch, name, ns_c_in, type_code(type), on_answer, &a);
	authn_dns_wait(ch, &a.is_done, c->deadline > 0 ? c->deadline :
	    now_mono() + 60);
	if (!a.is_done) {
		ares_cancel(ch);
		free(a.buf);
		return AUTHN_DNS_FAIL;
	}
	if (a.status == ARES_ENOTFOUND) {
		free(a.buf);
		return AUTHN_DNS_NXDOMAIN;
	}
	if (a.status == ARES_ENODATA) {
		free(a.buf);
		return AUTHN_DNS_NODATA;
	}
	if (a.status != ARES_SUCCESS || a.buf == NULL) {
		free(a.buf);
		return AUTHN_DNS_FAIL;
	}
	rrs = xcalloc(AUTHN_SPF_RRS_MAX + 1, sizeof(*rrs));
	if (answer_parse(a.buf, a.len, type, rrs, &n) < 0 && n == 0) {
		/* An answer without records of the type (a CNAME only)
		 * is no data; c-ares says ENODATA for it. */
		free(a.buf);
		free(rrs);
		return AUTHN_DNS_NODATA;
	}
	c->ttl = answer_ttl(a.buf, a.len, type_code(type));
	free(a.buf);
	if (n == 0) {
		free(rrs);
		return AUTHN_DNS_NODATA;
	}
	*rrs_out = rrs;
	*n_out = n;
	return AUTHN_DNS_OK;
}
