/*
 * queue_lookup: blocking DNS lookups for the admin command (`postern dns
 * check`, `postern doctor`) with c-ares, through the resolver the queue
 * runner uses ([queue] resolver, else the system's). A command asks one
 * question at a time and waits for it: c-ares' sockets are polled here,
 * never on an event loop. Each answer record comes back as the text a
 * zone file shows for it, so that callers compare strings.
 */
#include "queue/queue.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ares.h>

#include "authn/authn.h"
#include "lib/util.h"

/* A record's text is at most a TXT of 64 KiB; answers are UDP-sized or
 * TCP at most 64 KiB, so counts are bounded by the message. */
#define LOOKUP_RRS_MAX 64

struct queue_lookup {
	ares_channel channel;
};

struct answer {
	bool is_done;
	int status;
	unsigned char *buf;
	int len;
};

struct queue_lookup *
queue_lookup_new(const char *server, uint16_t port, char *err,
    size_t errlen)
{
	struct queue_lookup *l;
	struct ares_options opts;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 2000;	/* ms per try */
	opts.tries = 2;
	rc = ares_init_options(&l->channel, &opts,
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(l);
		return NULL;
	}
	if (server != NULL) {
		char csv[128];

		snprintf(csv, sizeof(csv), strchr(server, ':') != NULL ?
		    "[%s]:%u" : "%s:%u", server, (unsigned)port);
		rc = ares_set_servers_ports_csv(l->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: resolver %s: %s", csv,
			    ares_strerror(rc));
			ares_destroy(l->channel);
			free(l);
			return NULL;
		}
	}
	return l;
}

void
queue_lookup_free(struct queue_lookup **lp)
{
	if (*lp == NULL)
		return;
	ares_destroy((*lp)->channel);
	free(*lp);
	*lp = NULL;
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static const struct {
	const char *name;
	int type;
} types[] = {
	{ "A", ns_t_a }, { "AAAA", ns_t_aaaa }, { "MX", ns_t_mx },
	{ "TXT", ns_t_txt }, { "SRV", ns_t_srv }, { "CNAME", ns_t_cname },
	{ "CAA", 257 }, { "PTR", ns_t_ptr },
};

static void
rr_add(char **rrs, size_t *n, char *s)
{
	if (*n < LOOKUP_RRS_MAX)
		rrs[(*n)++] = s;
	else
		free(s);
}

/* CNAME and PTR: records of the asked type whose data is one name (c-ares
 * 1.18 has no parser that keeps a CNAME answer's target). */
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
			rr_add(rrs, n, xasprintf("%s.", name));
			ares_free_string(name);
		}
		p += rdlen;
	}
	return 0;
}

/* The text of a TXT record: its strings joined (RFC 7208 §3.3). */
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
answer_parse(const unsigned char *buf, int len, int type, char **rrs,
    size_t *n)
{
	char addr[INET6_ADDRSTRLEN];

	switch (type) {
	case ns_t_a: {
		struct ares_addrttl at[LOOKUP_RRS_MAX];
		int na = LOOKUP_RRS_MAX;

		if (ares_parse_a_reply(buf, len, NULL, at, &na) !=
		    ARES_SUCCESS)
			return -1;
		for (int i = 0; i < na; i++)
			rr_add(rrs, n, xstrdup(inet_ntop(AF_INET,
			    &at[i].ipaddr, addr, sizeof(addr))));
		return 0;
	}
	case ns_t_aaaa: {
		struct ares_addr6ttl at[LOOKUP_RRS_MAX];
		int na = LOOKUP_RRS_MAX;

		if (ares_parse_aaaa_reply(buf, len, NULL, at, &na) !=
		    ARES_SUCCESS)
			return -1;
		for (int i = 0; i < na; i++)
			rr_add(rrs, n, xstrdup(inet_ntop(AF_INET6,
			    &at[i].ip6addr, addr, sizeof(addr))));
		return 0;
	}
	case ns_t_mx: {
		struct ares_mx_reply *mx = NULL;

		if (ares_parse_mx_reply(buf, len, &mx) != ARES_SUCCESS)
			return -1;
		for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
			rr_add(rrs, n, xasprintf("%u %s.", m->priority,
			    m->host));
		ares_free_data(mx);
		return 0;
	}
	case ns_t_srv: {
		struct ares_srv_reply *srv = NULL;

		if (ares_parse_srv_reply(buf, len, &srv) != ARES_SUCCESS)
			return -1;
		for (struct ares_srv_reply *s = srv; s != NULL; s = s->next)
			rr_add(rrs, n, xasprintf("%u %u %u %s.", s->priority,
			    s->weight, s->port, s->host));
		ares_free_data(srv);
		return 0;
	}
	case 257: {
		struct ares_caa_reply *caa = NULL;

		if (ares_parse_caa_reply(buf, len, &caa) != ARES_SUCCESS)
			return -1;
		for (struct ares_caa_reply *c = caa; c != NULL; c = c->next)
			rr_add(rrs, n, xasprintf("%d %.*s \"%.*s\"",
			    c->critical, (int)c->plength, c->property,
			    (int)c->length, c->value));
		ares_free_data(caa);
		return 0;
	}
	case ns_t_txt:
		return txt_parse(buf, len, rrs, n);
	default:
		return names_parse(buf, len, type, rrs, n);
	}
}

enum queue_lookup_result
queue_lookup_query(struct queue_lookup *l, const char *name,
    const char *type_name, char ***rrs_out, size_t *n_out)
{
	struct answer a = { 0 };
	char **rrs;
	size_t n = 0;
	int type = -1;

	*rrs_out = NULL;
	*n_out = 0;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcasecmp(types[i].name, type_name) == 0)
			type = types[i].type;
	}
	if (type < 0)
		return QUEUE_LOOKUP_FAIL;
	/* ares_query, not ares_search: names are complete. */
	ares_query(l->channel, name, ns_c_in, type, on_answer, &a);
	/* c-ares' own timeouts and tries (queue_lookup_open) end a query
	 * long before this deadline. */
	authn_dns_wait(l->channel, &a.is_done, mono_now() + 120);
	if (!a.is_done)
		return QUEUE_LOOKUP_FAIL;
	if (a.status == ARES_ENOTFOUND)
		return QUEUE_LOOKUP_NXDOMAIN;
	if (a.status == ARES_ENODATA)
		return QUEUE_LOOKUP_NODATA;
	if (a.status != ARES_SUCCESS || a.buf == NULL) {
		free(a.buf);
		return QUEUE_LOOKUP_FAIL;
	}
	rrs = xcalloc(LOOKUP_RRS_MAX + 1, sizeof(*rrs));
	if (answer_parse(a.buf, a.len, type, rrs, &n) < 0 && n == 0) {
		free(a.buf);
		free(rrs);
		/* An answer without records of the type (a CNAME only). */
		return QUEUE_LOOKUP_NODATA;
	}
	free(a.buf);
	if (n == 0) {
		free(rrs);
		return QUEUE_LOOKUP_NODATA;
	}
	*rrs_out = rrs;
	*n_out = n;
	return QUEUE_LOOKUP_OK;
}

void
queue_lookup_rrs_free(char ***rrsp, size_t n)
{
	if (*rrsp == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*rrsp)[i]);
	free(*rrsp);
	*rrsp = NULL;
}
