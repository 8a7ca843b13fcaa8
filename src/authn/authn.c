/*
 * authn: the SPF service of the server. Checks run on a thread pool of
 * their own (not auth's, whose threads hash passwords), each with its own
 * c-ares channel and a deadline for the whole check; the verdict goes
 * back to the session's event loop. A slow or silent DNS server holds
 * pool threads, never an event loop.
 */
#include "authn/authn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "lib/workpool.h"

struct authn {
	char *resolver;
	uint16_t resolver_port;
	struct workpool *pool;
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
	a->resolver = s->resolver ? xstrdup(s->resolver) : NULL;
	a->resolver_port = s->resolver_port ? s->resolver_port : 53;
	a->pool = workpool_new(s->threads > 0 ? s->threads : 1);
	return a;
}

void
authn_free(struct authn **ap)
{
	struct authn *a = *ap;

	if (a == NULL)
		return;
	workpool_free(&a->pool);
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
