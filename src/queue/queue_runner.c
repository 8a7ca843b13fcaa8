/*
 * queue_runner: the thread that empties the outbound queue (DESIGN.md,
 * queue runner). Every poll_interval it claims the entries that are due
 * (store_queue_claim: a lease, so that a crash leaves them due again),
 * groups them into jobs — one message, one sender, one domain, at most
 * [limits] recipients — and runs each job: MX lookup, then an SMTP
 * session with the first host that answers (RFC 5321 §5.1), one
 * transaction for all the job's recipients. Each recipient's outcome is
 * recorded once the session is over: delivered (the entry goes), deferred
 * with backoff, or failed with an RFC 3464 report to the sender first (a
 * crash in between costs a duplicate report, never a lost one).
 *
 * Threads. One thread with its own event_base runs every job; store calls
 * from it are synchronous (they wait for the writer's group commit, a few
 * milliseconds).
 */
#include "queue/queue.h"
#include "queue/queue_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/net.h"
#include "store/store.h"

/* Entries one poll claims at most, per free job slot, and in all. */
#define CLAIM_PER_SLOT 10
#define CLAIM_MAX 500
/* Body bytes read from the file per step, and kept queued for the peer. */
#define BODY_CHUNK (64 * 1024)
#define BODY_HIGH (256 * 1024)
/* Bytes of the original message a report quotes: its header (RET=HDRS,
 * the default) or, under this size, the whole (RET=FULL). */
#define DSN_HEADER_MAX (64 * 1024)
#define DSN_FULL_MAX (1024 * 1024)
/* Longest reply text kept per recipient. */
#define RCPT_REPLY_MAX 512

/* TLS toward a destination ([queue] tls, tls_domains). */
enum tls_policy {
	TLS_NONE,		/* never STARTTLS */
	TLS_MAY,		/* when offered, any certificate (RFC 7435) */
	TLS_ENCRYPT,		/* required, any certificate */
	TLS_VERIFY,		/* required, valid for the MX host's name */
};

/* What the runner keeps of the configuration: a reload frees the
 * configuration it started with. */
struct runner_cfg {
	enum tls_policy tls;
	char *tls_domains;
	char *hostname;
	char *data_dir;
	char *resolver;
	uint16_t resolver_port;
	uint16_t remote_port;
	size_t concurrency;
	size_t per_domain;
	size_t recipients;
	int64_t retry_first, retry_max, lifetime, delay_warning;
	int64_t poll_interval, timeout;
};

struct queue_runner {
	struct runner_cfg cfg;
	struct store *st;
	struct event_base *base;
	struct event *poll_ev;
	struct event *stop_ev;	/* ends the loop, from its own thread */
	struct queue_dns *dns;
	struct net_tls_client *tls;
	struct queue_dkim_keys *dkim_keys;	/* the runner thread's */
	pthread_t thread;
	bool is_started;
	atomic_bool is_stopping;
	struct job *jobs;	/* oldest first, doubly linked */
	struct job *jobs_tail;
	size_t njobs;		/* in the list */
	size_t nrunning;	/* started and not done */
};

enum rcpt_state {
	RCPT_PENDING,		/* no answer yet */
	RCPT_ACCEPTED,		/* RCPT got 2xx; waits for the final dot */
	RCPT_DELIVERED,
	RCPT_DEFERRED,
	RCPT_FAILED,
};

struct job_rcpt {
	struct store_queue_entry e;	/* owned */
	enum rcpt_state state;
	char reply[RCPT_REPLY_MAX];	/* the reply that decided it */
	char status[16];		/* RFC 3463 code of that reply */
	bool is_remote;			/* the reply came from the peer */
};

enum job_state {
	JOB_DNS_MX,
	JOB_DNS_ADDR,
	JOB_CONNECT,
	JOB_GREETING,
	JOB_EHLO,
	JOB_HELO,
	JOB_STARTTLS,
	JOB_TLS,
	JOB_MAIL,
	JOB_RCPT,
	JOB_DATA,
	JOB_DOT,
	JOB_QUIT,
};

struct job {
	struct queue_runner *r;
	struct job *prev, *next;
	char sid[24];
	char *domain;
	struct job_rcpt *rcpts;
	size_t n;
	enum job_state state;

	/* Where to go: MX hosts by preference, then the addresses of the
	 * current host. */
	struct queue_mx mx[QUEUE_DNS_HOSTS_MAX];	/* hosts owned */
	size_t nmx, mx_i;
	struct sockaddr_storage addrs[QUEUE_DNS_ADDRS_MAX];
	size_t naddrs, addr_i;

	/* The session. */
	struct bufferevent *bev;
	struct queue_reply ehlo;
	bool is_tls;
	bool is_pipelined;	/* MAIL, RCPTs and DATA sent together */
	bool has_mail_failed;	/* MAIL refused: the rest is read, then QUIT */
	size_t rcpt_i;		/* next RCPT reply expected */
	size_t naccepted;
	int body_fd;
	uint64_t body_off;
	struct queue_stuff stuff;	/* where the body's lines stand */

	/* Why the last host did not take the mail, for a deferral. */
	char last_reply[RCPT_REPLY_MAX];
	char last_status[16];
	bool is_last_remote;

	/* Recorded; freed on the loop's next turn (STYLE.md: never inside
	 * its own callbacks). */
	bool is_done;

	/* The DKIM-Signature field sent in front of the message, or NULL. */
	char *dkim;

	/* Started (a slot taken); until then it waits for one. */
	bool is_started;

	enum tls_policy tls;
};

static void job_next_host(struct job *j);
static void job_end(struct job *j);
static void job_rcpt_send(struct job *j, size_t i);
static void job_dkim(struct job *j);

/* ---- Small helpers --------------------------------------------------- */

static int64_t
now_secs(void)
{
	return (int64_t)time(NULL);
}

static const char *
current_host(const struct job *j)
{
	return j->mx_i < j->nmx ? j->mx[j->mx_i].host : j->domain;
}

/* Notes why this attempt did not reach the recipients. */
static void
job_note(struct job *j, const char *status, bool is_remote, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
job_note(struct job *j, const char *status, bool is_remote, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->last_reply, sizeof(j->last_reply), fmt, ap);
	va_end(ap);
	snprintf(j->last_status, sizeof(j->last_status), "%s", status);
	j->is_last_remote = is_remote;
}

/* Decides every recipient still without an outcome. */
static void
rcpts_settle(struct job *j, enum rcpt_state state, const char *status,
    const char *reply, bool is_remote, bool is_accepted_too)
{
	for (size_t i = 0; i < j->n; i++) {
		struct job_rcpt *rc = &j->rcpts[i];

		if (rc->state != RCPT_PENDING &&
		    !(is_accepted_too && rc->state == RCPT_ACCEPTED))
			continue;
		size_t n = strnlen(reply, sizeof(rc->reply) - 1);

		rc->state = state;
		/* A long reply is cut to what the queue keeps. */
		memcpy(rc->reply, reply, n);
		rc->reply[n] = '\0';
		snprintf(rc->status, sizeof(rc->status), "%s", status);
		rc->is_remote = is_remote;
	}
}

static void
rcpt_from_reply(struct job_rcpt *rc, const struct queue_reply *rp,
    enum rcpt_state state)
{
	char line[QUEUE_REPLY_TEXT_MAX];

	rc->state = state;
	snprintf(rc->reply, sizeof(rc->reply), "%s",
	    queue_reply_line(rp, line, sizeof(line)));
	queue_reply_status(rp, rc->status, sizeof(rc->status));
	rc->is_remote = true;
}

/* The job's log id: q1, q2, ... */
static void
sid_make(struct job *j)
{
	static atomic_uint_fast64_t serial;

	snprintf(j->sid, sizeof(j->sid), "q%" PRIu64,
	    (uint64_t)atomic_fetch_add(&serial, 1) + 1);
}

/* A unique token for Message-IDs and MIME boundaries. */
static void
token_make(char *buf, size_t len)
{
	unsigned char raw[12];
	size_t o = 0;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		uint64_t t = (uint64_t)now_secs() ^ (uint64_t)getpid();

		memcpy(raw, &t, sizeof(t));
		memset(raw + 8, 0x5a, 4);
	}
	for (size_t i = 0; i < sizeof(raw) && o + 2 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", raw[i]);
}

/* ---- Reports to the sender ------------------------------------------ */

/* Reads what a report quotes of blob: its header, or all of it. */
static char *
original_read(struct queue_runner *r, const struct store_queue_entry *e,
    bool is_full, size_t *len_out)
{
	enum store_err err;
	size_t want = is_full ? (size_t)e->size : DSN_HEADER_MAX;
	int fd = store_blob_open(r->st, e->blob, &err);
	char *buf;
	ssize_t n;

	*len_out = 0;
	if (fd < 0)
		return NULL;
	if (want > e->size)
		want = (size_t)e->size;
	buf = xmalloc(want + 1);
	n = pread(fd, buf, want, 0);
	close(fd);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len_out = (size_t)n;
	if (!is_full) {
		char *end = strstr(buf, "\r\n\r\n");

		if (end == NULL)
			end = strstr(buf, "\n\n");
		if (end != NULL)
			*len_out = (size_t)(end - buf) + 2;
	}
	return buf;
}

/* Stores report in the sender's mailboxes, or queues it to an outside
 * sender with the null sender (RFC 3464 §2, RFC 5321 §4.5.5: a report is
 * never reported on). Returns 0, or -1 when it could not be stored (the
 * caller keeps the entries, to report later). */
static int
report_deliver(struct queue_runner *r, struct job *j, const char *sender,
    const char *text, size_t len)
{
	struct store_route route;
	struct store_delivery *d;
	struct store_delivery_result *res = NULL;
	enum store_err err;
	size_t n = 0, nqueued;
	int rc = 0;

	memset(&route, 0, sizeof(route));
	if (store_route_resolve(r->st, sender, &route, &err) < 0) {
		if (err == STORE_NOT_FOUND) {
			/* Ours, but nobody takes it any more: nothing to
			 * tell anyone. */
			log_warn(j->sid, "queue.report to=<%s> result=dropped "
			    "reason=\"no such local address\"", sender);
			return 0;
		}
		if (err != STORE_INVALID)
			return -1;
		route.external = xcalloc(1, sizeof(char *));
		route.external[0] = xstrdup(sender);
		route.nexternal = 1;
	}
	d = store_delivery_new(r->st, &err);
	if (d == NULL) {
		store_route_deinit(&route);
		return -1;
	}
	if (store_delivery_write(d, text, len, &err) < 0) {
		store_delivery_abort(&d);
		store_route_deinit(&route);
		return -1;
	}
	for (size_t i = 0; i < route.naccounts; i++)
		store_delivery_add(d, route.accounts[i], NULL, 0, NULL, 0);
	for (size_t i = 0; i < route.nexternal; i++)
		store_delivery_queue(d, "", route.external[i], NULL, NULL);
	nqueued = route.nexternal;
	store_route_deinit(&route);
	if (store_delivery_commit(d, &res, &n) < 0)
		return -1;
	/* Not atomic: each local copy counts when it was stored; the
	 * queued recipients share one result, of mailbox 0 (store.h). */
	for (size_t i = 0; i < n; i++) {
		if (res[i].err != STORE_OK)
			rc = -1;
		else
			metrics_add(res[i].mailbox != 0 ?
			    METRIC_DELIVERIES_LOCAL : METRIC_RECIPIENTS_QUEUED,
			    res[i].mailbox != 0 ? 1 : nqueued);
	}
	free(res);
	return rc;
}

static const char *
action_name(enum queue_dsn_action action)
{
	switch (action) {
	case QUEUE_DSN_FAILED:
		return "failed";
	case QUEUE_DSN_DELAYED:
		return "delayed";
	case QUEUE_DSN_DELIVERED:
		return "delivered";
	case QUEUE_DSN_RELAYED:
		return "relayed";
	}
	return "?";
}

/* Whether a report about e may go to its sender. Never to the null
 * sender (RFC 3464 §2, RFC 5321 §4.5.5). Mail that no logged-in account
 * sent (from another server, forwarded through an alias) has whatever
 * sender its client claimed: a report to an outside address would be
 * backscatter to a forged one, so it goes only to senders in our
 * domains (issue 15, finding 9); the rest is dropped with a log line. */
static bool
is_report_allowed(struct job *j, const struct store_queue_entry *e,
    enum queue_dsn_action action)
{
	const char *at = strrchr(e->sender, '@');
	char *domain;
	bool is_local;

	if (e->sender[0] == '\0')
		return false;
	if (e->is_authenticated)
		return true;
	domain = xstrdup(at != NULL ? at + 1 : "");
	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	is_local = domain[0] != '\0' && is_store_domain_local(j->r->st,
	    domain);
	free(domain);
	if (!is_local)
		log_info(j->sid, "queue.report to=<%s> action=%s "
		    "result=dropped reason=\"sender outside our domains and "
		    "not logged in (no backscatter)\"", e->sender,
		    action_name(action));
	return is_local;
}

/* Sends one report about the recipients of j that asked for it: FAILED
 * (a bounce) about those in RCPT_FAILED, DELAYED (a warning) about those
 * in RCPT_DEFERRED long enough, DELIVERED and RELAYED (RFC 3461 §6.2)
 * about those in RCPT_DELIVERED. Returns 0 when sent or not needed, -1
 * when it must be tried again later. */
static int
report_send(struct job *j, enum queue_dsn_action action)
{
	struct queue_runner *r = j->r;
	const struct store_queue_entry *first = &j->rcpts[0].e;
	struct queue_dsn_rcpt *dr;
	char **orcpts;
	char envid[128], ret[16], boundary[64], tok[32], msgid[160];
	struct queue_dsn dsn;
	size_t n = 0, len, olen;
	char *text, *orig;
	bool is_full;
	int rc;

	if (first->sender[0] == '\0')
		return 0;
	dr = xcalloc(j->n, sizeof(*dr));
	orcpts = xcalloc(j->n, sizeof(*orcpts));
	for (size_t i = 0; i < j->n; i++) {
		struct job_rcpt *rc_ = &j->rcpts[i];
		enum rcpt_state want = action == QUEUE_DSN_FAILED ?
		    RCPT_FAILED : action == QUEUE_DSN_DELAYED ?
		    RCPT_DEFERRED : RCPT_DELIVERED;
		const char *word = action == QUEUE_DSN_FAILED ? "FAILURE" :
		    action == QUEUE_DSN_DELAYED ? "DELAY" : "SUCCESS";
		char v[512];

		if (rc_->state != want)
			continue;
		if (action == QUEUE_DSN_DELAYED && (rc_->e.is_warned ||
		    r->cfg.delay_warning == 0 ||
		    now_secs() - rc_->e.created < r->cfg.delay_warning))
			continue;
		if (!has_queue_notify(rc_->e.dsn_rcpt, word))
			continue;
		if (queue_dsn_param(rc_->e.dsn_rcpt, "ORCPT", v,
		    sizeof(v)) != NULL)
			orcpts[n] = xstrdup(v);
		dr[n].rcpt = rc_->e.rcpt;
		dr[n].orcpt = orcpts[n];
		dr[n].status = rc_->status;
		dr[n].remote_mta = rc_->is_remote ? current_host(j) : NULL;
		dr[n].diagnostic = rc_->reply[0] != '\0' ? rc_->reply : NULL;
		n++;
	}
	if (n == 0 || !is_report_allowed(j, first, action)) {
		for (size_t i = 0; i < n; i++)
			free(orcpts[i]);
		free(dr);
		free(orcpts);
		return 0;
	}
	/* RFC 3461 §4.3: RET=FULL asks for the message in a failure report;
	 * we honour it for a logged-in sender's message up to
	 * DSN_FULL_MAX. Anything else (mail from other servers, success
	 * reports) quotes the header only: a report never carries a large
	 * message back to an address we cannot vouch for. */
	is_full = action == QUEUE_DSN_FAILED && first->is_authenticated &&
	    queue_dsn_param(first->dsn_envelope, "RET", ret,
	    sizeof(ret)) != NULL && strcasecmp(ret, "FULL") == 0 &&
	    first->size <= DSN_FULL_MAX;
	orig = original_read(r, first, is_full, &olen);
	token_make(tok, sizeof(tok));
	snprintf(boundary, sizeof(boundary), "=_postern_%s", tok);
	snprintf(msgid, sizeof(msgid), "<dsn.%s@%s>", tok, r->cfg.hostname);
	memset(&dsn, 0, sizeof(dsn));
	dsn.action = action;
	dsn.reporting_mta = r->cfg.hostname;
	dsn.sender = first->sender;
	dsn.envid = queue_dsn_param(first->dsn_envelope, "ENVID", envid,
	    sizeof(envid));
	dsn.arrival = first->created;
	dsn.now = now_secs();
	dsn.rcpts = dr;
	dsn.nrcpts = n;
	dsn.original = orig;
	dsn.original_len = orig != NULL ? olen : 0;
	dsn.is_full = is_full && orig != NULL;
	dsn.boundary = boundary;
	dsn.message_id = msgid;
	text = queue_dsn_build(&dsn, &len);
	rc = report_deliver(r, j, first->sender, text, len);
	if (rc == 0 && action == QUEUE_DSN_FAILED)
		metrics_add(METRIC_MESSAGES_BOUNCED, 1);
	log_info(j->sid, "queue.report to=<%s> action=%s recipients=%zu "
	    "result=%s", first->sender, action_name(action), n,
	    rc == 0 ? "stored" : "error");
	free(text);
	free(orig);
	for (size_t i = 0; i < n; i++)
		free(orcpts[i]);
	free(orcpts);
	free(dr);
	return rc;
}

/* ---- Recording outcomes --------------------------------------------- */

/* RFC 5321 §4.5.4.1: wait at least 30 minutes between tries; we start at
 * retry_first and double, up to retry_max. */
static int64_t
backoff(const struct runner_cfg *cfg, uint32_t attempts)
{
	int64_t d = cfg->retry_first;

	for (uint32_t i = 0; i < attempts && d < cfg->retry_max; i++)
		d *= 2;
	return d < cfg->retry_max ? d : cfg->retry_max;
}

static void
job_record(struct job *j)
{
	struct queue_runner *r = j->r;
	int64_t now = now_secs();
	enum store_err err;
	bool has_failed = false, has_deferred = false, has_delivered = false;

	/* Deferred past the lifetime: failed (RFC 5321 §4.5.4.1, give up
	 * after 4-5 days). */
	for (size_t i = 0; i < j->n; i++) {
		struct job_rcpt *rc = &j->rcpts[i];

		if ((rc->state == RCPT_DEFERRED || rc->state == RCPT_PENDING ||
		    rc->state == RCPT_ACCEPTED) &&
		    now - rc->e.created >= r->cfg.lifetime) {
			static const char head[] = "delivery time expired; "
			    "last reply: ";
			char reply[RCPT_REPLY_MAX];
			size_t keep = sizeof(reply) - sizeof(head);

			snprintf(reply, sizeof(reply), "%s%.*s", head,
			    (int)keep, rc->reply[0] != '\0' ? rc->reply :
			    "none");
			memcpy(rc->reply, reply, sizeof(rc->reply));
			snprintf(rc->status, sizeof(rc->status), "4.4.7");
			rc->is_remote = false;
			rc->state = RCPT_FAILED;
		} else if (rc->state == RCPT_PENDING ||
		    rc->state == RCPT_ACCEPTED) {
			rc->state = RCPT_DEFERRED;
		}
		has_failed |= rc->state == RCPT_FAILED;
		has_deferred |= rc->state == RCPT_DEFERRED;
		has_delivered |= rc->state == RCPT_DELIVERED;
	}
	/* RFC 3461 §6.2: a next hop without DSN will not report success;
	 * we say "relayed" to those who asked for it. Delivered is
	 * delivered: a report that cannot be stored is logged, the message
	 * is not sent again for it. */
	if (has_delivered && !j->ehlo.has_dsn &&
	    report_send(j, QUEUE_DSN_RELAYED) < 0)
		log_error(j->sid, "queue.report action=relayed error=\"cannot "
		    "store the report\"");
	/* The report first, then the entries go: a crash between costs a
	 * second report, never the only one. */
	if (has_failed && report_send(j, QUEUE_DSN_FAILED) < 0) {
		for (size_t i = 0; i < j->n; i++) {
			if (j->rcpts[i].state == RCPT_FAILED)
				j->rcpts[i].state = RCPT_DEFERRED;
		}
		has_deferred = true;
	}
	if (has_deferred && report_send(j, QUEUE_DSN_DELAYED) == 0) {
		for (size_t i = 0; i < j->n; i++) {
			struct job_rcpt *rc = &j->rcpts[i];

			if (rc->state == RCPT_DEFERRED && !rc->e.is_warned &&
			    r->cfg.delay_warning > 0 &&
			    now - rc->e.created >= r->cfg.delay_warning)
				store_queue_warned(r->st, rc->e.id, &err);
		}
	}
	for (size_t i = 0; i < j->n; i++) {
		struct job_rcpt *rc = &j->rcpts[i];
		enum store_queue_outcome out = rc->state == RCPT_DELIVERED ?
		    STORE_QUEUE_DELIVERED : rc->state == RCPT_FAILED ?
		    STORE_QUEUE_FAILED : STORE_QUEUE_DEFERRED;
		int64_t next = now + backoff(&r->cfg, rc->e.attempts);

		if (store_queue_finish(r->st, rc->e.id, out,
		    rc->reply[0] != '\0' ? rc->reply : NULL, next, NULL,
		    &err) < 0 && err != STORE_NOT_FOUND)
			log_error(j->sid, "queue.record id=%" PRId64
			    " error=\"%s\"", rc->e.id, store_err_text(err));
		metrics_add(out == STORE_QUEUE_DELIVERED ?
		    METRIC_RECIPIENTS_DELIVERED : out == STORE_QUEUE_FAILED ?
		    METRIC_RECIPIENTS_FAILED : METRIC_RECIPIENTS_DEFERRED, 1);
		log_info(j->sid, "queue.result id=%" PRId64 " from=<%s> "
		    "to=<%s> host=%s result=%s reply=\"%s\" next=%" PRId64,
		    rc->e.id, rc->e.sender, rc->e.rcpt, current_host(j),
		    out == STORE_QUEUE_DELIVERED ? "delivered" :
		    out == STORE_QUEUE_FAILED ? "failed" : "deferred",
		    rc->reply, out == STORE_QUEUE_DEFERRED ? next : 0);
	}
}

/* ---- Jobs ----------------------------------------------------------- */

static void
job_free(struct job *j)
{
	struct queue_runner *r = j->r;

	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		r->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	else
		r->jobs_tail = j->prev;
	r->njobs--;
	if (j->bev != NULL)
		bufferevent_free(j->bev);
	if (j->body_fd >= 0)
		close(j->body_fd);
	for (size_t i = 0; i < j->n; i++)
		store_queue_entry_deinit(&j->rcpts[i].e);
	for (size_t i = 0; i < j->nmx; i++)
		free(j->mx[i].host);
	free(j->rcpts);
	free(j->domain);
	free(j->dkim);
	free(j);
}

static void jobs_kick(struct queue_runner *r);

static void
on_job_free(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct queue_runner *r = j->r;

	(void)fd;
	(void)what;
	job_free(j);
	/* A slot is free: a waiting job may go. */
	jobs_kick(r);
}

/* The job is over: record its outcomes now, free it on the next turn. */
static void
job_end(struct job *j)
{
	if (j->is_done || atomic_load(&j->r->is_stopping))
		return;
	j->is_done = true;
	if (j->is_started)
		j->r->nrunning--;
	if (j->bev != NULL) {
		bufferevent_free(j->bev);
		j->bev = NULL;
	}
	job_record(j);
	if (event_base_once(j->r->base, -1, EV_TIMEOUT, on_job_free, j,
	    NULL) < 0)
		panic("queue: event_base_once failed");
}

static void
job_send(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
job_send(struct job *j, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(j->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* The session with this host ends before a transaction started: drop the
 * connection and try the next address or host (RFC 5321 §5.1). */
static void
job_host_failed(struct job *j)
{
	if (j->bev != NULL) {
		bufferevent_free(j->bev);
		j->bev = NULL;
	}
	j->is_tls = false;
	j->addr_i++;
	job_next_host(j);
}

/* The session ends after MAIL: what has no outcome is deferred. */
static void
job_session_lost(struct job *j, const char *why)
{
	char reply[RCPT_REPLY_MAX];

	snprintf(reply, sizeof(reply), "%s", why);
	rcpts_settle(j, RCPT_DEFERRED, "4.4.2", reply, false, true);
	job_end(j);
}

static void
job_quit(struct job *j)
{
	j->state = JOB_QUIT;
	job_send(j, "QUIT");
	/* on_write ends the job once QUIT is out. */
}

/* Writes the next piece of the body, dot-stuffed with every line end as
 * CRLF (queue_stuff_feed), and the final dot once the file is done. */
static void
body_fill(struct job *j)
{
	struct evbuffer *out = bufferevent_get_output(j->bev);
	char buf[BODY_CHUNK];

	while (evbuffer_get_length(out) < BODY_HIGH) {
		ssize_t n = pread(j->body_fd, buf, sizeof(buf),
		    (off_t)j->body_off);
		struct evbuffer_iovec v;
		size_t want = n > 0 ? 2 * (size_t)n + 2 : QUEUE_STUFF_END_MAX;

		if (n < 0) {
			job_session_lost(j, "cannot read the message");
			return;
		}
		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1)
			panic("queue: out of memory");
		if (n == 0) {
			v.iov_len = queue_stuff_end(&j->stuff, v.iov_base);
			evbuffer_commit_space(out, &v, 1);
			close(j->body_fd);
			j->body_fd = -1;
			j->state = JOB_DOT;
			return;
		}
		v.iov_len = queue_stuff_feed(&j->stuff, buf, (size_t)n,
		    v.iov_base);
		evbuffer_commit_space(out, &v, 1);
		j->body_off += (uint64_t)n;
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct job *j = arg;

	(void)bev;
	if (j->state == JOB_DATA && j->body_fd >= 0)
		body_fill(j);
	else if (j->state == JOB_QUIT)
		job_end(j);
}

static bool
is_text_ascii(const char *t)
{
	for (; *t != '\0'; t++) {
		if ((unsigned char)*t >= 0x80)
			return false;
	}
	return true;
}

static bool
is_envelope_utf8(const struct job *j)
{
	if (!is_text_ascii(j->rcpts[0].e.sender))
		return true;
	for (size_t i = 0; i < j->n; i++) {
		if (!is_text_ascii(j->rcpts[i].e.rcpt))
			return true;
	}
	return false;
}

/* MAIL, and with PIPELINING every RCPT and DATA behind it. */
static void
job_mail(struct job *j)
{
	const struct store_queue_entry *e = &j->rcpts[0].e;
	/* What goes on the wire: the DKIM-Signature field too. */
	uint64_t msg_size = e->size + (j->dkim != NULL ? strlen(j->dkim) : 0);
	char size[80] = "", dsn[600] = "";

	/* RFC 1870 §6.2: a message over the peer's limit would fail; say
	 * so now rather than send it. */
	if (j->ehlo.has_size && j->ehlo.size_max > 0 &&
	    msg_size > j->ehlo.size_max) {
		char why[200];

		snprintf(why, sizeof(why), "message of %" PRIu64 " bytes is "
		    "larger than %s accepts (%" PRIu64 ")", msg_size,
		    current_host(j), j->ehlo.size_max);
		rcpts_settle(j, RCPT_FAILED, "5.3.4", why, false, false);
		job_quit(j);
		return;
	}
	/* RFC 6531 §3.4: an address that is not ASCII needs SMTPUTF8 of the
	 * peer; without it the message cannot go there (5.6.7). */
	if (is_envelope_utf8(j) && !j->ehlo.has_smtputf8) {
		char why[200];

		snprintf(why, sizeof(why), "%s does not accept addresses in "
		    "UTF-8 (no SMTPUTF8)", current_host(j));
		rcpts_settle(j, RCPT_FAILED, "5.6.7", why, false, false);
		job_quit(j);
		return;
	}
	if (j->ehlo.has_size)
		snprintf(size, sizeof(size), " SIZE=%" PRIu64, msg_size);
	/* RFC 6152 §2: declaring 8BITMIME for a body that turns out to be
	 * 7-bit is allowed; the body is not scanned. A known limit (DESIGN.md,
	 * Outbound queue): an 8-bit body goes unchanged to a peer without
	 * 8BITMIME, neither converted nor bounced. */
	if (j->ehlo.has_8bitmime)
		snprintf(size + strlen(size), sizeof(size) - strlen(size),
		    " BODY=8BITMIME");
	if (is_envelope_utf8(j))
		snprintf(size + strlen(size), sizeof(size) - strlen(size),
		    " SMTPUTF8");
	/* RFC 3461 §4: a relay passes the DSN parameters on when the next
	 * server takes them. */
	if (j->ehlo.has_dsn && e->dsn_envelope != NULL)
		snprintf(dsn, sizeof(dsn), " %s", e->dsn_envelope);
	j->is_pipelined = j->ehlo.has_pipelining;
	j->state = JOB_MAIL;
	j->rcpt_i = 0;
	j->naccepted = 0;
	job_send(j, "MAIL FROM:<%s>%s%s", e->sender, size, dsn);
	if (j->is_pipelined) {
		/* RFC 2920 §3.1: MAIL, every RCPT and DATA in one go; DATA
		 * ends the group. */
		for (size_t i = 0; i < j->n; i++)
			job_rcpt_send(j, i);
		job_send(j, "DATA");
	}
}

static void
job_rcpt_send(struct job *j, size_t i)
{
	const struct store_queue_entry *e = &j->rcpts[i].e;
	bool has_dsn = j->ehlo.has_dsn && e->dsn_rcpt != NULL;

	job_send(j, "RCPT TO:<%s>%s%s", e->rcpt, has_dsn ? " " : "",
	    has_dsn ? e->dsn_rcpt : "");
}

static void
job_tls_start(struct job *j)
{
	struct queue_runner *r = j->r;
	struct bufferevent *tls;

	tls = net_tls_client_wrap(r->tls, r->base, j->bev, current_host(j),
	    j->tls == TLS_VERIFY);
	if (tls == NULL) {
		job_note(j, "4.7.5", false, "cannot start TLS with %s",
		    current_host(j));
		job_host_failed(j);
		return;
	}
	j->bev = tls;
	j->is_tls = true;
	j->state = JOB_TLS;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* The oldest job waiting for a slot to domain. */
static struct job *
job_waiting_for(struct queue_runner *r, const char *domain)
{
	for (struct job *w = r->jobs; w != NULL; w = w->next) {
		if (!w->is_started && !w->is_done &&
		    strcmp(w->domain, domain) == 0)
			return w;
	}
	return NULL;
}

/* Gives j's session, between transactions, to a job waiting for the same
 * domain, which starts with MAIL at once. Returns whether one took it. */
static bool
job_handover(struct job *j)
{
	struct job *w;

	if (j->bev == NULL || j->has_mail_failed ||
	    (w = job_waiting_for(j->r, j->domain)) == NULL)
		return false;
	w->is_started = true;
	j->r->nrunning++;
	w->bev = j->bev;
	j->bev = NULL;
	w->ehlo = j->ehlo;
	w->is_tls = j->is_tls;
	for (size_t i = 0; i < j->nmx; i++) {
		w->mx[i].host = xstrdup(j->mx[i].host);
		w->mx[i].pref = j->mx[i].pref;
	}
	w->nmx = j->nmx;
	w->mx_i = j->mx_i;
	memcpy(w->addrs, j->addrs, sizeof(w->addrs));
	w->naddrs = j->naddrs;
	w->addr_i = j->addr_i;
	bufferevent_setcb(w->bev, on_read, on_write, on_event, w);
	log_info(w->sid, "queue.reuse host=%s after=%s", current_host(w),
	    j->sid);
	job_mail(w);
	return true;
}

/* One complete reply in the current state. */
static void
job_reply(struct job *j, struct queue_reply *rp)
{
	char line[QUEUE_REPLY_TEXT_MAX], status[16];
	int cls = rp->code / 100;

	switch (j->state) {
	case JOB_GREETING:
		if (cls != 2) {
			job_note(j, queue_reply_status(rp, status,
			    sizeof(status)), true, "%s",
			    queue_reply_line(rp, line, sizeof(line)));
			job_host_failed(j);
			return;
		}
		j->state = JOB_EHLO;
		job_send(j, "EHLO %s", j->r->cfg.hostname);
		return;
	case JOB_EHLO:
		if (cls != 2) {
			/* RFC 5321 §3.2: an old server; HELO then. */
			j->state = JOB_HELO;
			job_send(j, "HELO %s", j->r->cfg.hostname);
			return;
		}
		j->ehlo = *rp;
		queue_reply_ehlo(&j->ehlo);
		if (j->ehlo.has_starttls && !j->is_tls &&
		    j->tls != TLS_NONE) {
			j->state = JOB_STARTTLS;
			job_send(j, "STARTTLS");
			return;
		}
		if (!j->is_tls && j->tls >= TLS_ENCRYPT) {
			job_note(j, "4.7.4", false, "TLS is required for %s "
			    "but %s does not offer STARTTLS", j->domain,
			    current_host(j));
			job_host_failed(j);
			return;
		}
		job_mail(j);
		return;
	case JOB_HELO:
		if (cls == 2 && j->tls >= TLS_ENCRYPT) {
			job_note(j, "4.7.4", false, "TLS is required for %s "
			    "but %s does not offer STARTTLS", j->domain,
			    current_host(j));
			job_host_failed(j);
			return;
		}
		if (cls != 2) {
			job_note(j, queue_reply_status(rp, status,
			    sizeof(status)), true, "%s",
			    queue_reply_line(rp, line, sizeof(line)));
			job_host_failed(j);
			return;
		}
		memset(&j->ehlo, 0, sizeof(j->ehlo));
		job_mail(j);
		return;
	case JOB_STARTTLS:
		if (rp->code != 220) {
			if (j->tls >= TLS_ENCRYPT) {
				queue_reply_line(rp, line, sizeof(line));
				job_note(j, "4.7.4", true, "%s refused "
				    "STARTTLS: %s", current_host(j), line);
				job_host_failed(j);
				return;
			}
			/* Offered, then refused: go on in plaintext (RFC 3207
			 * §4.1 leaves the choice to the client). */
			job_mail(j);
			return;
		}
		/* RFC 3207 §4.2: nothing the server sent after 220 counts. */
		evbuffer_drain(bufferevent_get_input(j->bev),
		    evbuffer_get_length(bufferevent_get_input(j->bev)));
		job_tls_start(j);
		if (j->bev != NULL) {
			bufferevent_setcb(j->bev, on_read, on_write, on_event,
			    j);
			bufferevent_set_timeouts(j->bev,
			    &(struct timeval){ j->r->cfg.timeout, 0 },
			    &(struct timeval){ j->r->cfg.timeout, 0 });
			bufferevent_enable(j->bev, EV_READ | EV_WRITE);
		}
		return;
	case JOB_MAIL:
		if (cls != 2) {
			/* Every recipient shares the sender's fate. */
			queue_reply_line(rp, line, sizeof(line));
			rcpts_settle(j, cls == 5 ? RCPT_FAILED : RCPT_DEFERRED,
			    queue_reply_status(rp, status, sizeof(status)),
			    line, true, false);
			j->has_mail_failed = true;
			if (!j->is_pipelined) {
				job_quit(j);
				return;
			}
		}
		j->state = JOB_RCPT;
		if (!j->is_pipelined)
			job_rcpt_send(j, 0);
		return;
	case JOB_RCPT: {
		struct job_rcpt *rc = &j->rcpts[j->rcpt_i++];

		if (!j->has_mail_failed) {
			if (cls == 2) {
				rc->state = RCPT_ACCEPTED;
				j->naccepted++;
			} else {
				rcpt_from_reply(rc, rp, cls == 5 ?
				    RCPT_FAILED : RCPT_DEFERRED);
			}
		}
		if (j->rcpt_i < j->n) {
			if (!j->is_pipelined)
				job_rcpt_send(j, j->rcpt_i);
			return;
		}
		j->state = JOB_DATA;
		if (!j->is_pipelined) {
			if (j->naccepted == 0) {
				job_quit(j);
				return;
			}
			job_send(j, "DATA");
		}
		return;
	}
	case JOB_DATA:
		if (rp->code != 354) {
			if (j->naccepted > 0 && !j->has_mail_failed) {
				enum rcpt_state to = cls == 5 ? RCPT_FAILED :
				    RCPT_DEFERRED;

				for (size_t i = 0; i < j->n; i++) {
					if (j->rcpts[i].state == RCPT_ACCEPTED)
						rcpt_from_reply(&j->rcpts[i],
						    rp, to);
				}
			}
			job_quit(j);
			return;
		}
		if (j->naccepted == 0 || j->has_mail_failed) {
			/* RFC 2920 §3.1: a server that says 354 with no
			 * recipient gets an empty message; it has none to
			 * deliver it to. */
			evbuffer_add(bufferevent_get_output(j->bev), ".\r\n",
			    3);
			j->state = JOB_DOT;
			return;
		}
		{
			enum store_err err;

			j->body_fd = store_blob_open(j->r->st,
			    j->rcpts[0].e.blob, &err);
			if (j->body_fd < 0) {
				job_session_lost(j, "cannot open the message");
				return;
			}
		}
		j->body_off = 0;
		queue_stuff_init(&j->stuff);
		if (j->dkim != NULL)
			evbuffer_add(bufferevent_get_output(j->bev), j->dkim,
			    strlen(j->dkim));
		body_fill(j);
		return;
	case JOB_DOT:
		for (size_t i = 0; i < j->n; i++) {
			struct job_rcpt *rc = &j->rcpts[i];

			if (rc->state != RCPT_ACCEPTED || j->has_mail_failed)
				continue;
			rcpt_from_reply(rc, rp, cls == 2 ? RCPT_DELIVERED :
			    cls == 5 ? RCPT_FAILED : RCPT_DEFERRED);
		}
		/* The session is between transactions: a job waiting for
		 * the same domain goes on in it (RFC 5321 §3.3 allows many
		 * transactions in one session). */
		if (job_handover(j))
			job_end(j);
		else
			job_quit(j);
		return;
	case JOB_QUIT:
		return;
	default:
		return;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct job *j = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (j->bev == bev && !j->is_done && j->state != JOB_QUIT) {
		struct queue_reply rp;
		enum parse_rc prc = queue_reply_read(in, &rp);

		if (prc == PARSE_MORE)
			return;
		if (prc == PARSE_ERROR) {
			if (j->state <= JOB_HELO || j->state == JOB_STARTTLS) {
				job_note(j, "4.5.0", false, "malformed reply "
				    "from %s", current_host(j));
				job_host_failed(j);
			} else {
				job_session_lost(j, "malformed reply");
			}
			return;
		}
		log_debug(j->sid, "queue.reply host=%s code=%d",
		    current_host(j), rp.code);
		/* A reply may end the job or replace j->bev (TLS, the
		 * next host); the loop condition sees both. */
		job_reply(j, &rp);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct job *j = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (j->state == JOB_CONNECT) {
			j->state = JOB_GREETING;
		} else if (j->state == JOB_TLS) {
			log_info(j->sid, "queue.tls host=%s version=%s",
			    current_host(j), net_tls_bev_version(j->bev));
			/* RFC 3207 §4.2: forget what plaintext said. */
			memset(&j->ehlo, 0, sizeof(j->ehlo));
			j->state = JOB_EHLO;
			job_send(j, "EHLO %s", j->r->cfg.hostname);
		}
		return;
	}
	if (j->state == JOB_QUIT) {
		job_end(j);
		return;
	}
	if (j->state < JOB_MAIL) {
		job_note(j, j->state == JOB_TLS ? "4.7.5" : "4.4.1", false,
		    "%s with %s%s", (what & BEV_EVENT_TIMEOUT) ? "timeout" :
		    j->state == JOB_CONNECT ? "connection refused" :
		    j->state == JOB_TLS ? "TLS handshake failed" :
		    "connection lost", current_host(j),
		    j->state == JOB_TLS && j->tls == TLS_VERIFY ?
		    " (certificate not verified)" : "");
		job_host_failed(j);
		return;
	}
	job_session_lost(j, (what & BEV_EVENT_TIMEOUT) ?
	    "timeout during the transaction" :
	    "connection lost during the transaction");
}

/* Connects to the current address of the current host, or moves on. */
static void
job_connect(struct job *j)
{
	struct queue_runner *r = j->r;
	struct sockaddr_storage ss = j->addrs[j->addr_i];
	socklen_t len;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_port = htons(r->cfg.remote_port);
		len = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_port = htons(r->cfg.remote_port);
		len = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
	}
	log_info(j->sid, "queue.connect host=%s address=%s port=%u",
	    current_host(j), ip, (unsigned)r->cfg.remote_port);
	j->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(j->bev, on_read, on_write, on_event, j);
	bufferevent_set_timeouts(j->bev, &(struct timeval){ r->cfg.timeout, 0 },
	    &(struct timeval){ r->cfg.timeout, 0 });
	bufferevent_enable(j->bev, EV_READ | EV_WRITE);
	j->state = JOB_CONNECT;
	if (bufferevent_socket_connect(j->bev, (struct sockaddr *)&ss,
	    (int)len) < 0) {
		job_note(j, "4.4.1", false, "cannot connect to %s (%s)",
		    current_host(j), ip);
		job_host_failed(j);
	}
}

static void
on_addr(void *arg, enum queue_dns_result res,
    const struct sockaddr_storage *addrs, size_t n)
{
	struct job *j = arg;

	if (atomic_load(&j->r->is_stopping))
		return;
	if (res != QUEUE_DNS_OK || n == 0) {
		job_note(j, "4.4.3", false, "cannot find the address of %s",
		    current_host(j));
		j->mx_i++;
		j->addr_i = 0;
		j->naddrs = 0;
		job_next_host(j);
		return;
	}
	memcpy(j->addrs, addrs, n * sizeof(*addrs));
	j->naddrs = n;
	j->addr_i = 0;
	job_connect(j);
}

/* Moves to the next address, then the next host; when none is left the
 * recipients without an outcome are deferred with the last reason. */
static void
job_next_host(struct job *j)
{
	if (j->addr_i < j->naddrs) {
		job_connect(j);
		return;
	}
	if (j->naddrs > 0) {
		/* Every address of this host failed. */
		j->mx_i++;
		j->naddrs = 0;
		j->addr_i = 0;
	}
	if (j->mx_i >= (j->nmx > 0 ? j->nmx : 1)) {
		rcpts_settle(j, RCPT_DEFERRED, j->last_status[0] != '\0' ?
		    j->last_status : "4.4.1", j->last_reply[0] != '\0' ?
		    j->last_reply : "no host answered", j->is_last_remote,
		    true);
		if (j->nmx > 0)
			j->mx_i = j->nmx - 1;
		job_end(j);
		return;
	}
	j->state = JOB_DNS_ADDR;
	queue_dns_addr(j->r->dns, current_host(j), on_addr, j);
}

static void
on_mx(void *arg, enum queue_dns_result res, const struct queue_mx *mx,
    size_t n)
{
	struct job *j = arg;
	char why[300];

	if (atomic_load(&j->r->is_stopping))
		return;
	switch (res) {
	case QUEUE_DNS_OK:
		for (size_t i = 0; i < n && i < QUEUE_DNS_HOSTS_MAX; i++) {
			j->mx[i].host = xstrdup(mx[i].host);
			j->mx[i].pref = mx[i].pref;
		}
		j->nmx = n < QUEUE_DNS_HOSTS_MAX ? n : QUEUE_DNS_HOSTS_MAX;
		break;
	case QUEUE_DNS_NODATA:
		/* RFC 5321 §5.1: no MX, the domain is its own host. */
		j->nmx = 0;
		break;
	case QUEUE_DNS_NULL_MX:
		/* RFC 7505 §4.2: permanent, 5.1.10. */
		snprintf(why, sizeof(why), "the domain %s accepts no mail "
		    "(null MX)", j->domain);
		rcpts_settle(j, RCPT_FAILED, "5.1.10", why, false, false);
		job_end(j);
		return;
	case QUEUE_DNS_NXDOMAIN:
		snprintf(why, sizeof(why), "the domain %s does not exist",
		    j->domain);
		rcpts_settle(j, RCPT_FAILED, "5.1.2", why, false, false);
		job_end(j);
		return;
	case QUEUE_DNS_TEMP:
		snprintf(why, sizeof(why), "cannot look up the mail servers "
		    "of %s (DNS)", j->domain);
		rcpts_settle(j, RCPT_DEFERRED, "4.4.3", why, false, false);
		job_end(j);
		return;
	}
	j->mx_i = 0;
	job_next_host(j);
}

/* The policy for domain: its entry in tls_domains, else [queue] tls. */
static enum tls_policy
tls_policy_for(const struct runner_cfg *cfg, const char *domain)
{
	static const char *const names[] = { "none", "may", "encrypt",
	    "verify" };
	const char *p = cfg->tls_domains;
	size_t dl = strlen(domain);

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " \t,");
		const char *colon = memchr(p, ':', n);

		if (colon != NULL && (size_t)(colon - p) == dl &&
		    strncasecmp(p, domain, dl) == 0) {
			size_t pl = n - dl - 1;

			for (size_t i = 0; i < 4; i++) {
				if (strlen(names[i]) == pl &&
				    strncmp(colon + 1, names[i], pl) == 0)
					return (enum tls_policy)i;
			}
		}
		p += n;
		p += strspn(p, " \t,");
	}
	return cfg->tls;
}

/* Starts a waiting job: a slot is its. */
static void
job_run(struct job *j)
{
	j->is_started = true;
	j->r->nrunning++;
	j->state = JOB_DNS_MX;
	if (j->domain[0] == '\0') {
		rcpts_settle(j, RCPT_FAILED, "5.1.3", "no domain in the "
		    "recipient address", false, false);
		job_end(j);
		return;
	}
	queue_dns_mx(j->r->dns, j->domain, on_mx, j);
}

/* Starts waiting jobs, oldest first, while slots are free: at most
 * concurrency in all and per_domain to one domain. */
static void
jobs_kick(struct queue_runner *r)
{
	if (atomic_load(&r->is_stopping))
		return;
	for (struct job *j = r->jobs; j != NULL &&
	    r->nrunning < r->cfg.concurrency; j = j->next) {
		size_t same = 0;

		if (j->is_started || j->is_done)
			continue;
		for (struct job *k = r->jobs; k != NULL; k = k->next) {
			if (k->is_started && !k->is_done &&
			    strcmp(k->domain, j->domain) == 0)
				same++;
		}
		if (same < r->cfg.per_domain)
			job_run(j);
	}
}

/* A new job for entries (taken), waiting for a slot. */
static void
job_new(struct queue_runner *r, struct store_queue_entry *entries,
    size_t n)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->r = r;
	j->body_fd = -1;
	j->rcpts = xcalloc(n, sizeof(*j->rcpts));
	for (size_t i = 0; i < n; i++) {
		j->rcpts[i].e = entries[i];
		memset(&entries[i], 0, sizeof(entries[i]));
	}
	j->n = n;
	j->domain = xstrdup(j->rcpts[0].e.domain);
	j->tls = tls_policy_for(&r->cfg, j->domain);
	sid_make(j);
	j->prev = r->jobs_tail;
	if (r->jobs_tail != NULL)
		r->jobs_tail->next = j;
	else
		r->jobs = j;
	r->jobs_tail = j;
	r->njobs++;
	log_info(j->sid, "queue.start domain=%s from=<%s> recipients=%zu "
	    "blob=%" PRId64, j->domain, j->rcpts[0].e.sender, n,
	    j->rcpts[0].e.blob);
	job_dkim(j);
}

/* Signs the job's message with the DKIM key of the sender's domain when
 * it is ours and has one (RFC 6376; `postern dkim generate`), and a
 * logged-in account sent it. */
static void
job_dkim(struct job *j)
{
	struct queue_runner *r = j->r;
	const struct store_queue_entry *e = &j->rcpts[0].e;
	const char *at = strrchr(e->sender, '@');
	char *domain, err[256];
	const char *sel;
	const struct net_key *key;
	enum store_err serr;
	int fd;

	if (at == NULL || at[1] == '\0' || strlen(at + 1) > 253)
		return;
	domain = xstrdup(at + 1);
	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strchr(domain, '/') != NULL || domain[0] == '.' ||
	    !is_store_domain_local(r->st, domain)) {
		free(domain);
		return;
	}
	/* Our signature vouches for the sender: only a logged-in account
	 * is one. Mail from another server forwarded through an alias
	 * keeps whatever sender it claimed, unsigned (issue 15, finding 7:
	 * a forged MAIL FROM of ours must not come out signed). */
	if (!e->is_authenticated) {
		log_info(j->sid, "queue.dkim domain=%s result=unsigned "
		    "reason=\"not sent by a logged-in account\"", domain);
		free(domain);
		return;
	}
	key = queue_dkim_keys_get(r->dkim_keys, domain, &sel, err,
	    sizeof(err));
	if (sel[0] != '\0' && key == NULL)
		log_error(j->sid, "queue.dkim domain=%s error=\"%s\"", domain,
		    err);
	if (key != NULL && (fd = store_blob_open(r->st, e->blob, &serr)) >= 0) {
		j->dkim = queue_dkim_sign_fd(fd, e->size, key, domain, sel,
		    now_secs());
		close(fd);
		log_info(j->sid, "queue.dkim domain=%s selector=%s result=%s",
		    domain, sel, j->dkim != NULL ? "signed" : "unsigned");
	}
	free(domain);
}

/* ---- Success reports of local deliveries ----------------------------- */

/* Writes the success report (RFC 3464 "delivered") that a local delivery
 * asked for (store_delivery_notify: entries with is_report, taken), one
 * for the n recipients of one message, then removes the entries. The
 * entries were committed with the delivery, so a report is never lost; a
 * crash after it is stored costs a second one. A report that cannot be
 * stored waits like a deferred delivery, until the lifetime ends. */
static void
notify_run(struct queue_runner *r, struct store_queue_entry *entries,
    size_t n)
{
	struct job *j = xcalloc(1, sizeof(*j));
	int64_t now = now_secs();
	enum store_err err;
	int rc;

	j->r = r;
	j->body_fd = -1;
	sid_make(j);
	j->rcpts = xcalloc(n, sizeof(*j->rcpts));
	for (size_t i = 0; i < n; i++) {
		j->rcpts[i].e = entries[i];
		memset(&entries[i], 0, sizeof(entries[i]));
		j->rcpts[i].state = RCPT_DELIVERED;
		snprintf(j->rcpts[i].status, sizeof(j->rcpts[i].status),
		    "2.0.0");
	}
	j->n = n;
	j->domain = xstrdup(j->rcpts[0].e.domain);
	rc = report_send(j, QUEUE_DSN_DELIVERED);
	for (size_t i = 0; i < n; i++) {
		struct job_rcpt *rc_ = &j->rcpts[i];
		bool is_expired = now - rc_->e.created >= r->cfg.lifetime;
		enum store_queue_outcome out = rc == 0 || is_expired ?
		    STORE_QUEUE_DELIVERED : STORE_QUEUE_DEFERRED;

		if (store_queue_finish(r->st, rc_->e.id, out, rc == 0 ? NULL :
		    "cannot store the success report", now +
		    backoff(&r->cfg, rc_->e.attempts), NULL, &err) < 0 &&
		    err != STORE_NOT_FOUND)
			log_error(j->sid, "queue.record id=%" PRId64
			    " error=\"%s\"", rc_->e.id, store_err_text(err));
		if (rc < 0)
			log_warn(j->sid, "queue.notify id=%" PRId64 " to=<%s> "
			    "result=%s", rc_->e.id, rc_->e.sender, is_expired ?
			    "dropped" : "deferred");
		store_queue_entry_deinit(&rc_->e);
	}
	free(j->rcpts);
	free(j->domain);
	free(j);
}

/* ---- Polling -------------------------------------------------------- */

static bool
is_in_flight(struct queue_runner *r, int64_t id)
{
	for (struct job *j = r->jobs; j != NULL; j = j->next) {
		for (size_t i = 0; i < j->n; i++) {
			if (j->rcpts[i].e.id == id)
				return true;
		}
	}
	return false;
}

static bool
is_same_job(const struct store_queue_entry *a,
    const struct store_queue_entry *b)
{
	return a->blob == b->blob && strcmp(a->sender, b->sender) == 0 &&
	    strcmp(a->domain, b->domain) == 0 &&
	    a->is_authenticated == b->is_authenticated &&
	    a->is_report == b->is_report &&
	    ((a->dsn_envelope == NULL && b->dsn_envelope == NULL) ||
	    (a->dsn_envelope != NULL && b->dsn_envelope != NULL &&
	    strcmp(a->dsn_envelope, b->dsn_envelope) == 0));
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *r = arg;
	struct store_queue_entry *list, *group;
	enum store_err err;
	size_t n, max, slots;
	bool *used;
	int64_t lease;

	(void)fd;
	(void)what;
	/* Enough waits already: claim when the backlog is small. */
	if (atomic_load(&r->is_stopping) ||
	    r->njobs - r->nrunning >= r->cfg.concurrency)
		return;
	slots = r->cfg.concurrency - (r->njobs - r->nrunning);
	max = slots * CLAIM_PER_SLOT;
	if (max > CLAIM_MAX)
		max = CLAIM_MAX;
	/* Long enough for the slowest job: DNS, then every host and
	 * address up to the timeout each. */
	lease = r->cfg.timeout * 12 > 3600 ? r->cfg.timeout * 12 : 3600;
	if (store_queue_claim(r->st, now_secs(), lease, max, &list, &n,
	    &err) < 0) {
		log_error(NULL, "queue.claim error=\"%s\"",
		    store_err_text(err));
		return;
	}
	if (n == 0)
		return;
	used = xcalloc(n, sizeof(*used));
	group = xcalloc(n, sizeof(*group));
	for (size_t i = 0; i < n; i++) {
		size_t ng = 0;

		if (used[i])
			continue;
		if (is_in_flight(r, list[i].id)) {
			used[i] = true;
			store_queue_entry_deinit(&list[i]);
			continue;
		}
		/* group[0] (list[i], moved) is the key of the job. */
		for (size_t k = i; k < n && ng < r->cfg.recipients; k++) {
			if (used[k] || (k != i && (!is_same_job(&group[0],
			    &list[k]) || is_in_flight(r, list[k].id))))
				continue;
			used[k] = true;
			group[ng++] = list[k];
			memset(&list[k], 0, sizeof(list[k]));
		}
		if (group[0].is_report)
			notify_run(r, group, ng);
		else
			job_new(r, group, ng);
	}
	free(group);
	free(used);
	store_queue_list_free(&list, n);
	jobs_kick(r);
}

/* ---- The thread ----------------------------------------------------- */

/* event_base_loopbreak() from another thread before the loop has started
 * is forgotten (the loop clears the flag as it starts); an active event is
 * not: the loop breaks itself when it runs this. */
static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *r = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(r->base);
}

static void *
runner_main(void *arg)
{
	struct queue_runner *r = arg;

	event_base_dispatch(r->base);
	return NULL;
}

struct queue_runner *
queue_runner_new(const struct config *cfg, struct store *st, char *err,
    size_t errlen)
{
	struct queue_runner *r = xcalloc(1, sizeof(*r));

	evthread_use_pthreads();
	r->st = st;
	r->cfg.hostname = xstrdup(cfg->hostname);
	r->cfg.data_dir = xstrdup(cfg->data_dir);
	r->cfg.tls = cfg->queue_tls == NULL ? TLS_MAY :
	    strcmp(cfg->queue_tls, "none") == 0 ? TLS_NONE :
	    strcmp(cfg->queue_tls, "encrypt") == 0 ? TLS_ENCRYPT :
	    strcmp(cfg->queue_tls, "verify") == 0 ? TLS_VERIFY : TLS_MAY;
	r->cfg.tls_domains = cfg->queue_tls_domains != NULL ?
	    xstrdup(cfg->queue_tls_domains) : NULL;
	r->cfg.resolver = cfg->queue_resolver != NULL ?
	    xstrdup(cfg->queue_resolver) : NULL;
	r->cfg.resolver_port = (uint16_t)cfg->queue_resolver_port;
	r->cfg.remote_port = (uint16_t)cfg->queue_remote_port;
	r->cfg.concurrency = (size_t)cfg->queue_concurrency;
	r->cfg.per_domain = (size_t)cfg->queue_concurrency_per_domain;
	r->cfg.recipients = (size_t)cfg->recipients;
	r->cfg.retry_first = (int64_t)cfg->queue_retry_first;
	r->cfg.retry_max = (int64_t)cfg->queue_retry_max;
	r->cfg.lifetime = (int64_t)cfg->queue_lifetime;
	r->cfg.delay_warning = (int64_t)cfg->queue_delay_warning;
	r->cfg.poll_interval = (int64_t)cfg->queue_poll_interval;
	r->cfg.timeout = (int64_t)cfg->queue_timeout;
	atomic_init(&r->is_stopping, false);
	r->base = event_base_new();
	if (r->base == NULL) {
		snprintf(err, errlen, "queue: cannot create an event loop");
		queue_runner_free(&r);
		return NULL;
	}
	r->dns = queue_dns_new(r->base, r->cfg.resolver,
	    r->cfg.resolver_port, err, errlen);
	if (r->dns == NULL) {
		queue_runner_free(&r);
		return NULL;
	}
	r->tls = net_tls_client_new(err, errlen);
	if (r->tls == NULL) {
		queue_runner_free(&r);
		return NULL;
	}
	r->dkim_keys = queue_dkim_keys_new(r->cfg.data_dir);
	r->poll_ev = event_new(r->base, -1, EV_PERSIST, on_poll, r);
	r->stop_ev = event_new(r->base, -1, 0, on_stop, r);
	return r;
}

int
queue_runner_start(struct queue_runner *r, char *err, size_t errlen)
{
	enum store_err serr;
	int rc;

	if (r->cfg.concurrency == 0) {
		log_info(NULL, "queue.runner state=off reason=\"concurrency "
		    "is 0\"");
		return 0;
	}
	/* No other runner uses this store: what a previous one held is
	 * due again now. */
	if (store_queue_unlease_all(r->st, &serr) < 0) {
		snprintf(err, errlen, "queue: cannot reset the queue: %s",
		    store_err_text(serr));
		return -1;
	}
	event_add(r->poll_ev, &(struct timeval){ r->cfg.poll_interval, 0 });
	event_active(r->poll_ev, EV_TIMEOUT, 0);
	rc = pthread_create(&r->thread, NULL, runner_main, r);
	if (rc != 0) {
		snprintf(err, errlen, "queue: cannot start the runner: %s",
		    strerror(rc));
		return -1;
	}
	r->is_started = true;
	log_info(NULL, "queue.runner state=started concurrency=%zu "
	    "resolver=%s", r->cfg.concurrency, r->cfg.resolver != NULL ?
	    r->cfg.resolver : "system");
	return 0;
}

void
queue_runner_stop(struct queue_runner *r)
{
	if (r == NULL || !r->is_started)
		return;
	atomic_store(&r->is_stopping, true);
	event_active(r->stop_ev, 0, 0);
	pthread_join(r->thread, NULL);
	r->is_started = false;
}

void
queue_runner_free(struct queue_runner **rp)
{
	struct queue_runner *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	queue_runner_stop(r);
	atomic_store(&r->is_stopping, true);
	/* The resolver first: its pending callbacks see is_stopping and
	 * leave the jobs alone; then the jobs, whose entries stay leased
	 * until the next runner starts. */
	queue_dns_free(&r->dns);
	while (r->jobs != NULL)
		job_free(r->jobs);
	if (r->poll_ev != NULL)
		event_free(r->poll_ev);
	if (r->stop_ev != NULL)
		event_free(r->stop_ev);
	net_tls_client_free(&r->tls);
	queue_dkim_keys_free(&r->dkim_keys);
	if (r->base != NULL)
		event_base_free(r->base);
	free(r->cfg.hostname);
	free(r->cfg.data_dir);
	free(r->cfg.tls_domains);
	free(r->cfg.resolver);
	free(r);
}

/* ---- Reload (SIGHUP) ---------------------------------------------------- */

/* The reloadable part of a new configuration, on its way to the runner's
 * thread. The resolver, the data directory and turning the runner on or
 * off need a restart (cli_serve.c says so in the log). */
struct runner_reload {
	struct queue_runner *r;
	struct runner_cfg cfg;
};

static void
runner_reload_apply(struct queue_runner *r, struct runner_cfg *c)
{
	char *hostname = r->cfg.hostname, *domains = r->cfg.tls_domains;

	r->cfg.hostname = c->hostname;
	r->cfg.tls_domains = c->tls_domains;
	r->cfg.tls = c->tls;
	r->cfg.remote_port = c->remote_port;
	if (r->cfg.concurrency != 0 && c->concurrency != 0)
		r->cfg.concurrency = c->concurrency;
	r->cfg.per_domain = c->per_domain;
	r->cfg.recipients = c->recipients;
	r->cfg.retry_first = c->retry_first;
	r->cfg.retry_max = c->retry_max;
	r->cfg.lifetime = c->lifetime;
	r->cfg.delay_warning = c->delay_warning;
	r->cfg.timeout = c->timeout;
	if (r->cfg.poll_interval != c->poll_interval && r->is_started) {
		r->cfg.poll_interval = c->poll_interval;
		event_add(r->poll_ev, &(struct timeval){ r->cfg.poll_interval,
		    0 });
	}
	r->cfg.poll_interval = c->poll_interval;
	free(hostname);
	free(domains);
	log_info(NULL, "queue.reloaded concurrency=%zu per_domain=%zu "
	    "retry_first=%" PRId64 " retry_max=%" PRId64 " lifetime=%" PRId64
	    " timeout=%" PRId64 " poll_interval=%" PRId64, r->cfg.concurrency,
	    r->cfg.per_domain, r->cfg.retry_first, r->cfg.retry_max,
	    r->cfg.lifetime, r->cfg.timeout, r->cfg.poll_interval);
}

static void
on_reload(evutil_socket_t fd, short what, void *arg)
{
	struct runner_reload *rl = arg;

	(void)fd;
	(void)what;
	runner_reload_apply(rl->r, &rl->cfg);
	free(rl);
}

void
queue_runner_reload(struct queue_runner *r, const struct config *cfg)
{
	struct runner_reload *rl = xcalloc(1, sizeof(*rl));
	struct runner_cfg *c = &rl->cfg;

	rl->r = r;
	c->hostname = xstrdup(cfg->hostname);
	c->tls = cfg->queue_tls == NULL ? TLS_MAY :
	    strcmp(cfg->queue_tls, "none") == 0 ? TLS_NONE :
	    strcmp(cfg->queue_tls, "encrypt") == 0 ? TLS_ENCRYPT :
	    strcmp(cfg->queue_tls, "verify") == 0 ? TLS_VERIFY : TLS_MAY;
	c->tls_domains = cfg->queue_tls_domains != NULL ?
	    xstrdup(cfg->queue_tls_domains) : NULL;
	c->remote_port = (uint16_t)cfg->queue_remote_port;
	c->concurrency = (size_t)cfg->queue_concurrency;
	c->per_domain = (size_t)cfg->queue_concurrency_per_domain;
	c->recipients = (size_t)cfg->recipients;
	c->retry_first = (int64_t)cfg->queue_retry_first;
	c->retry_max = (int64_t)cfg->queue_retry_max;
	c->lifetime = (int64_t)cfg->queue_lifetime;
	c->delay_warning = (int64_t)cfg->queue_delay_warning;
	c->poll_interval = (int64_t)cfg->queue_poll_interval;
	c->timeout = (int64_t)cfg->queue_timeout;
	/* The runner's fields belong to its thread: applied there, between
	 * two callbacks, when it runs; at once when it does not. */
	if (!r->is_started) {
		runner_reload_apply(r, c);
		free(rl);
		return;
	}
	if (event_base_once(r->base, -1, EV_TIMEOUT, on_reload, rl,
	    NULL) < 0)
		panic("queue: cannot schedule a reload");
}
