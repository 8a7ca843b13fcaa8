/*
 * authn: the SPF and DKIM services of the server. Checks run on a thread pool of
 * their own (not auth's, whose threads hash passwords), each with its own
 * c-ares channel and a deadline for the whole check; the verdict goes
 * back to the session's event loop. A slow or silent DNS server holds
 * pool threads, never an event loop.
 */
#include "authn/authn_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "lib/workpool.h"

/* The DKIM keys the pool threads fetched, kept for their TTL (at most
 * DNS_CACHE_TTL_MAX): direct-mapped by a hash of the type and name, a
 * newer answer replacing whatever held its slot. Positive answers only;
 * bounded by DNS_CACHE_SLOTS x DNS_CACHE_ENTRY_MAX bytes. */
#define DNS_CACHE_SLOTS 1024
#define DNS_CACHE_ENTRY_MAX 8192
#define DNS_CACHE_TTL_MAX 3600

struct cache_entry {
	char *name;		/* NULL: empty */
	enum authn_dns_type type;
	char **rrs;
	size_t n;
	double expires;		/* CLOCK_MONOTONIC seconds */
};

struct authn {
	char *resolver;
	uint16_t resolver_port;
	struct workpool *pool;
	pthread_mutex_t cache_lock;
	struct cache_entry cache[DNS_CACHE_SLOTS];
	unsigned long cache_hits;
	struct authn_psl *psl;
};

struct spf_job {
	struct authn *a;
	struct authn_spf_request req;
	char *ip, *helo, *sender, *receiver;
	struct authn_spf_verdict v;
	double submitted;	/* CLOCK_MONOTONIC seconds */
	void (*done)(void *arg, const struct authn_spf_verdict *v);
	void *arg;
};

struct authn *
authn_new(const struct authn_settings *s, char *err, size_t errlen)
{
	struct authn *a;

	if (authn_dns_library_init(err, errlen) < 0)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	if (s->psl_file != NULL) {
		char perr[300];

		a->psl = authn_psl_load(s->psl_file, perr, sizeof(perr));
		if (a->psl == NULL) {
			snprintf(err, errlen, "[dmarc] psl_file: %s", perr);
			free(a);
			return NULL;
		}
	}
	a->resolver = s->resolver ? xstrdup(s->resolver) : NULL;
	a->resolver_port = s->resolver_port ? s->resolver_port : 53;
	a->pool = workpool_new(s->threads > 0 ? s->threads : 1);
	pthread_mutex_init(&a->cache_lock, NULL);
	return a;
}

void
authn_free(struct authn **ap)
{
	struct authn *a = *ap;

	if (a == NULL)
		return;
	workpool_free(&a->pool);
	for (size_t i = 0; i < DNS_CACHE_SLOTS; i++) {
		struct cache_entry *e = &a->cache[i];

		for (size_t k = 0; k < e->n; k++)
			free(e->rrs[k]);
		free(e->rrs);
		free(e->name);
	}
	pthread_mutex_destroy(&a->cache_lock);
	authn_psl_free(&a->psl);
	free(a->resolver);
	free(a);
	*ap = NULL;
}

static void
outcome_temperror(struct authn_spf_outcome *o, const char *why)
{
	memset(o, 0, sizeof(*o));
	o->result = AUTHN_SPF_TEMPERROR;
	o->reason = xstrdup(why);
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void
outcome_copy(struct authn_spf_outcome *to,
    const struct authn_spf_outcome *from)
{
	*to = *from;
	to->domain = dup_or_null(from->domain);
	to->sender = dup_or_null(from->sender);
	to->explanation = dup_or_null(from->explanation);
	to->reason = dup_or_null(from->reason);
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum authn_dns_rc
dns_fail_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	(void)arg;
	(void)type;
	(void)name;
	*rrs_out = NULL;
	*n_out = 0;
	return AUTHN_DNS_FAIL;
}

/* Both identities, one deadline for the two (§4.6.4: at least 20 s),
 * counted from start: the time the check was asked for, so that time
 * spent waiting for a free pool thread is part of it. A check whose
 * time is up before it starts is a temperror without any DNS: a client
 * that keeps every thread busy with domains whose servers never answer
 * delays other sessions by at most the timeout, not by the length of
 * the queue (and the queue drains as fast as it fills). */
static int
verdict_make(const char *resolver, uint16_t port,
    const struct authn_spf_request *req, double start,
    struct authn_spf_verdict *v, char *err, size_t errlen)
{
	struct authn_dns_channel ch;
	struct authn_dns dns = { authn_dns_query, &ch };
	double deadline = 0;

	if (req->timeout > 0) {
		deadline = start + req->timeout;
		if (now_mono() >= deadline) {
			snprintf(err, errlen, "no SPF thread was free within "
			    "the check's time limit (%u s)", req->timeout);
			return -1;
		}
	}
	if (authn_dns_open(&ch, resolver, port, deadline, err, errlen) < 0)
		return -1;
	authn_spf_check_helo(&dns, req, &v->helo);
	if (req->sender == NULL || req->sender[0] == '\0')
		/* §2.4: for <> the MAIL FROM identity is postmaster@HELO,
		 * the check just made. */
		outcome_copy(&v->mailfrom, &v->helo);
	else
		authn_spf_check_mailfrom(&dns, req, &v->mailfrom);
	authn_dns_close(&ch);
	return 0;
}

int
authn_spf_check_now(const char *resolver, uint16_t port,
    const struct authn_spf_request *req, struct authn_spf_verdict *v,
    char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	if (authn_dns_library_init(err, errlen) < 0)
		return -1;
	return verdict_make(resolver, port ? port : 53, req, now_mono(), v,
	    err, errlen);
}

static void
spf_work(void *arg)
{
	struct spf_job *j = arg;
	char err[160];

	if (verdict_make(j->a->resolver, j->a->resolver_port, &j->req,
	    j->submitted, &j->v, err, sizeof(err)) < 0) {
		outcome_temperror(&j->v.mailfrom, err);
		outcome_temperror(&j->v.helo, err);
	}
}

static void
spf_done(void *arg)
{
	struct spf_job *j = arg;

	j->done(j->arg, &j->v);
	authn_spf_outcome_deinit(&j->v.mailfrom);
	authn_spf_outcome_deinit(&j->v.helo);
	free(j->ip);
	free(j->helo);
	free(j->sender);
	free(j->receiver);
	free(j);
}

int
authn_spf_submit(struct authn *a, const struct authn_spf_request *req,
    struct event_base *base,
    void (*done)(void *arg, const struct authn_spf_verdict *v), void *arg)
{
	struct spf_job *j = xcalloc(1, sizeof(*j));

	j->a = a;
	j->ip = xstrdup(req->ip ? req->ip : "");
	j->helo = req->helo ? xstrdup(req->helo) : NULL;
	j->sender = xstrdup(req->sender ? req->sender : "");
	j->receiver = xstrdup(req->receiver ? req->receiver : "");
	j->req = *req;
	j->req.ip = j->ip;
	j->req.helo = j->helo;
	j->req.sender = j->sender;
	j->req.receiver = j->receiver;
	j->submitted = now_mono();
	j->done = done;
	j->arg = arg;
	return workpool_submit(a->pool, spf_work, base, spf_done, j);
}

/* ---- DKIM ------------------------------------------------------------ */

static char **
rrs_copy(char *const *rrs, size_t n)
{
	char **out = xcalloc(n + 1, sizeof(*out));

	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(rrs[i]);
	return out;
}

static struct cache_entry *
cache_slot(struct authn *a, enum authn_dns_type type, const char *name)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &a->cache[h % DNS_CACHE_SLOTS];
}

/* The channel is opened at the first question the cache cannot answer:
 * a message whose keys are all cached costs no c-ares channel. */
struct cached_dns {
	struct authn *a;
	double deadline;
	bool is_open;
	struct authn_dns_channel ch;
};

/* struct authn_dns's query through the cache of a. */
static enum authn_dns_rc
cached_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct cached_dns *c = arg;
	struct cache_entry *e = cache_slot(c->a, type, name);
	enum authn_dns_rc rc;
	size_t bytes = 0;

	pthread_mutex_lock(&c->a->cache_lock);
	if (e->name != NULL && e->type == type && strcmp(e->name, name) == 0 &&
	    e->expires > now_mono()) {
		*rrs_out = rrs_copy(e->rrs, e->n);
		*n_out = e->n;
		c->a->cache_hits++;
		pthread_mutex_unlock(&c->a->cache_lock);
		return AUTHN_DNS_OK;
	}
	pthread_mutex_unlock(&c->a->cache_lock);
	if (!c->is_open) {
		char err[160];

		if (authn_dns_open(&c->ch, c->a->resolver,
		    c->a->resolver_port, c->deadline, err, sizeof(err)) < 0) {
			*rrs_out = NULL;
			*n_out = 0;
			return AUTHN_DNS_FAIL;
		}
		c->is_open = true;
	}
	rc = authn_dns_query(&c->ch, type, name, rrs_out, n_out);
	if (rc != AUTHN_DNS_OK || c->ch.ttl == 0)
		return rc;
	for (size_t i = 0; i < *n_out; i++)
		bytes += strlen((*rrs_out)[i]) + 1;
	if (bytes > DNS_CACHE_ENTRY_MAX)
		return rc;
	pthread_mutex_lock(&c->a->cache_lock);
	for (size_t k = 0; k < e->n; k++)
		free(e->rrs[k]);
	free(e->rrs);
	free(e->name);
	e->name = xstrdup(name);
	e->type = type;
	e->rrs = rrs_copy(*rrs_out, *n_out);
	e->n = *n_out;
	e->expires = now_mono() + (c->ch.ttl < DNS_CACHE_TTL_MAX ?
	    c->ch.ttl : DNS_CACHE_TTL_MAX);
	pthread_mutex_unlock(&c->a->cache_lock);
	return rc;
}

/* Fetches the keys of d and checks it, DNS within timeout seconds of
 * start; a check whose time is up before it starts is a temperror for
 * each signature left, without any DNS (as SPF's, above). */
static void
dkim_run(struct authn *a, const char *resolver, uint16_t port,
    struct authn_dkim *d, double start, unsigned timeout,
    struct authn_dkim_verdict *v)
{
	struct authn_dns_channel ch;
	char err[160];
	double deadline = timeout > 0 ? start + timeout : 0;
	/* A resolver that fails every query. */
	struct authn_dns none = { dns_fail_query, NULL };

	if (deadline > 0 && now_mono() >= deadline) {
		authn_dkim_verify(d, &none, v);
		return;
	}
	if (a != NULL) {
		/* The server: keys through its cache. */
		struct cached_dns cd = { .a = a, .deadline = deadline };
		struct authn_dns dns = { cached_query, &cd };

		authn_dkim_verify(d, &dns, v);
		if (cd.is_open)
			authn_dns_close(&cd.ch);
		return;
	}
	if (authn_dns_open(&ch, resolver, port, deadline, err,
	    sizeof(err)) < 0) {
		authn_dkim_verify(d, &none, v);
		return;
	}
	struct authn_dns dns = { authn_dns_query, &ch };

	authn_dkim_verify(d, &dns, v);
	authn_dns_close(&ch);
}

int
authn_dkim_check_now(const char *resolver, uint16_t port, const char *msg,
    size_t len, time_t now, unsigned timeout, struct authn_dkim_verdict *v,
    char *err, size_t errlen)
{
	char *m = xmalloc(2 * len + 3);
	size_t n = 0, hend = 0;
	struct authn_dkim *d;

	memset(v, 0, sizeof(*v));
	if (authn_dns_library_init(err, errlen) < 0) {
		free(m);
		return -1;
	}
	/* Line ends as SMTP DATA leaves them: CRLF everywhere. */
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			m[n++] = '\r';
			m[n++] = '\n';
			i++;
		} else if (msg[i] == '\r' || msg[i] == '\n') {
			m[n++] = '\r';
			m[n++] = '\n';
		} else {
			m[n++] = msg[i];
		}
		if (hend == 0 && n >= 2 && m[n - 1] == '\n' &&
		    (n == 2 || (n >= 4 && memcmp(m + n - 4, "\r\n\r\n", 4) ==
		    0)))
			hend = n;
	}
	if (hend == 0)
		hend = n;	/* no body */
	d = authn_dkim_new(m, hend, now);
	if (d != NULL) {
		authn_dkim_body(d, m + hend, n - hend);
		dkim_run(NULL, resolver, port ? port : 53, d, now_mono(),
		    timeout, v);
		authn_dkim_free(&d);
	}
	free(m);
	return 0;
}

struct dkim_job {
	struct authn *a;
	struct authn_dkim *d;
	unsigned timeout;
	double submitted;
	struct authn_dkim_verdict v;
	void (*done)(void *arg, const struct authn_dkim_verdict *v);
	void *arg;
};

static void
dkim_work(void *arg)
{
	struct dkim_job *j = arg;

	dkim_run(j->a, j->a->resolver, j->a->resolver_port, j->d,
	    j->submitted, j->timeout, &j->v);
}

static void
dkim_done(void *arg)
{
	struct dkim_job *j = arg;

	j->done(j->arg, &j->v);
	authn_dkim_free(&j->d);
	free(j);
}

int
authn_dkim_submit(struct authn *a, struct authn_dkim *d, unsigned timeout,
    struct event_base *base,
    void (*done)(void *arg, const struct authn_dkim_verdict *v), void *arg)
{
	struct dkim_job *j = xcalloc(1, sizeof(*j));

	j->a = a;
	j->d = d;
	j->timeout = timeout;
	j->submitted = now_mono();
	j->done = done;
	j->arg = arg;
	return workpool_submit(a->pool, dkim_work, base, dkim_done, j);
}

/* ---- DMARC ------------------------------------------------------------ */

const struct authn_psl *
authn_psl(const struct authn *a)
{
	return a != NULL ? a->psl : NULL;
}

static void
dmarc_temperror(struct authn_dmarc_outcome *o, const char *from,
    const char *why)
{
	memset(o, 0, sizeof(*o));
	o->result = AUTHN_DMARC_TEMPERROR;
	o->policy_tag = "p";
	snprintf(o->from_domain, sizeof(o->from_domain), "%s",
	    from ? from : "");
	snprintf(o->reason, sizeof(o->reason), "%s", why);
}

/* a: the server, whose answers are cached (records found; the walk's
 * empty answers are asked again); NULL: the CLI, through resolver. */
static int
dmarc_make(struct authn *a, const char *resolver, uint16_t port,
    unsigned timeout, double start, const struct authn_dmarc_request *req,
    struct authn_dmarc_outcome *out, char *err, size_t errlen)
{
	struct authn_dns_channel ch;
	struct authn_dns dns = { authn_dns_query, &ch };
	double deadline = 0;

	if (timeout > 0) {
		deadline = start + timeout;
		if (now_mono() >= deadline) {
			snprintf(err, errlen, "no DMARC thread was free "
			    "within the check's time limit (%u s)", timeout);
			return -1;
		}
	}
	if (a != NULL) {
		struct cached_dns cd = { .a = a, .deadline = deadline };
		struct authn_dns cdns = { cached_query, &cd };

		authn_dmarc_check(&cdns, req, out);
		if (cd.is_open)
			authn_dns_close(&cd.ch);
		return 0;
	}
	if (authn_dns_open(&ch, resolver, port, deadline, err, errlen) < 0)
		return -1;
	authn_dmarc_check(&dns, req, out);
	authn_dns_close(&ch);
	return 0;
}

int
authn_dmarc_check_now(const char *resolver, uint16_t port, unsigned timeout,
    const struct authn_dmarc_request *req, struct authn_dmarc_outcome *out,
    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (authn_dns_library_init(err, errlen) < 0)
		return -1;
	return dmarc_make(NULL, resolver, port ? port : 53, timeout,
	    now_mono(), req, out, err, errlen);
}

struct dmarc_job {
	struct authn *a;
	struct authn_dmarc_request req;
	char *from, *spf_domain;
	struct authn_dmarc_dkim *dkim;
	unsigned timeout;
	double submitted;
	struct authn_dmarc_outcome out;
	void (*done)(void *arg, const struct authn_dmarc_outcome *o);
	void *arg;
};

static void
dmarc_work(void *arg)
{
	struct dmarc_job *j = arg;
	char err[160];

	if (dmarc_make(j->a, NULL, 0, j->timeout, j->submitted, &j->req,
	    &j->out, err, sizeof(err)) < 0)
		dmarc_temperror(&j->out, j->from, err);
}

static void
dmarc_done(void *arg)
{
	struct dmarc_job *j = arg;

	j->done(j->arg, &j->out);
	for (size_t i = 0; i < j->req.ndkim; i++)
		free((char *)j->dkim[i].domain);
	free(j->dkim);
	free(j->from);
	free(j->spf_domain);
	free(j);
}

int
authn_dmarc_submit(struct authn *a, const struct authn_dmarc_request *req,
    unsigned timeout, struct event_base *base,
    void (*done)(void *arg, const struct authn_dmarc_outcome *o), void *arg)
{
	struct dmarc_job *j = xcalloc(1, sizeof(*j));
	size_t nd = req->ndkim < AUTHN_DMARC_DKIM_MAX ? req->ndkim :
	    AUTHN_DMARC_DKIM_MAX;

	j->a = a;
	j->req = *req;
	j->from = dup_or_null(req->from_domain);
	j->spf_domain = dup_or_null(req->spf_domain);
	j->req.from_domain = j->from;
	j->req.spf_domain = j->spf_domain;
	j->dkim = xcalloc(nd ? nd : 1, sizeof(*j->dkim));
	for (size_t i = 0; i < nd; i++) {
		j->dkim[i].domain = xstrdup(req->dkim[i].domain ?
		    req->dkim[i].domain : "");
		j->dkim[i].is_pass = req->dkim[i].is_pass;
	}
	j->req.dkim = j->dkim;
	j->req.ndkim = nd;
	j->req.psl = a->psl;
	j->timeout = timeout;
	j->submitted = now_mono();
	j->done = done;
	j->arg = arg;
	return workpool_submit(a->pool, dmarc_work, base, dmarc_done, j);
}
