/*
 * conn: one client connection on one worker: its bufferevent (plain, TLS,
 * or TLS over plain after STARTTLS), its input buffer, its limits and
 * timeouts, and the protocol session riding on it. Only the worker that
 * accepted a connection touches it.
 *
 * The connection owns the session's lifetime, for every protocol: a
 * session is freed (ops->close) only from the connection's own free event,
 * after the loop turn that closed it, never inside one of its callbacks;
 * and not before every callback it waits for (net_conn_wait) has arrived.
 * Input is fed to the session only while nothing holds it back: the
 * session's own pause, a wait, a delay, or replies piling up unread.
 */
#include "net/net_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

/* How long a closing connection may take to flush its last reply. */
#define CLOSE_FLUSH_SECS 10
/* Refused connections beyond the limits still cost a socket; past this
 * many over the limit they are dropped without a word. */
#define REFUSE_SLACK 64

/* Why input is not fed to the session (net_conn.pauses). */
enum pause_reason {
	PAUSE_SESSION = 1 << 0,	/* net_conn_pause(): a command runs */
	PAUSE_WAIT = 1 << 1,	/* net_conn_wait(): a callback will come */
	PAUSE_DELAY = 1 << 2,	/* net_conn_delay(): slowed down */
	PAUSE_OUTPUT = 1 << 3,	/* replies pile up unread */
};

struct net_conn {
	struct worker *w;
	struct net_runtime *rt;
	const struct config_listener *listener;
	struct bufferevent *bev;
	struct buf in;
	const struct net_session_ops *ops;
	void *session;
	const char *refusal;	/* set: say this, then close */
	struct sockaddr_storage addr;
	struct event *free_ev;
	struct event *resume_ev;	/* re-feeds input() after a pause */
	struct event *delay_ev;		/* ends a net_conn_delay() */
	struct event *deadline_ev;	/* the login deadline */
	struct event *drain_ev;		/* the layer under TLS drained */
	struct event *flush_ev;		/* ends a burst of compressed output */
	struct net_deflate *deflate;	/* COMPRESS=DEFLATE, once started */
	struct net_conn *prev, *next;
	unsigned pauses;	/* enum pause_reason bits */
	unsigned waits;		/* callbacks the session waits for */
	bool is_tls;
	bool is_handshaking;
	bool is_counted;	/* holds a slot in the limits */
	bool is_closing;
	bool is_tls_shut;	/* close_notify sent */
	bool has_new_layer;	/* STARTTLS or COMPRESS began in input() */
	bool has_unfed;		/* a pause left parsed-later bytes in in */
	bool is_logged_in;	/* net_conn_logged_in() */
	bool is_transport_gone;	/* socket closed; the session still waits */
	bool is_metered;	/* counted in lib/metrics (open, not closed) */
	char sid[24];
	char peer[INET6_ADDRSTRLEN];
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);
static void on_delay_over(evutil_socket_t fd, short what, void *arg);
static void on_deadline(evutil_socket_t fd, short what, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_drain(evutil_socket_t fd, short what, void *arg);
static void on_flush(evutil_socket_t fd, short what, void *arg);

static struct timeval
secs(uint64_t n)
{
	struct timeval tv = { (time_t)n, 0 };

	return tv;
}

/* Whether the protocol logs users in (the login timeouts apply). Port 25
 * serves other servers, which never log in. */
static bool
has_login(const struct net_conn *c)
{
	return c->listener->proto == CONFIG_PROTO_IMAP ||
	    c->listener->proto == CONFIG_PROTO_POP3 ||
	    c->listener->proto == CONFIG_PROTO_SUBMISSION;
}

static uint64_t
proto_timeout(const struct net_conn *c)
{
	const struct config *cfg = c->rt->cfg;
	uint64_t idle;

	switch (c->listener->proto) {
	case CONFIG_PROTO_IMAP:
		idle = cfg->imap_timeout;
		break;
	case CONFIG_PROTO_POP3:
		idle = cfg->pop3_timeout;
		break;
	case CONFIG_PROTO_HTTP:
		/* Between keep-alive requests; a request that trickles in
		 * is bounded by [timeouts] http_request (src/http). */
		idle = cfg->http_timeout;
		break;
	default:
		idle = cfg->smtp_timeout;
		break;
	}
	/* RFC 9051 §5.4: the autologout timer may be shorter before
	 * authentication; the same holds for POP3 and submission. */
	if (has_login(c) && !c->is_logged_in && cfg->prelogin_timeout < idle)
		return cfg->prelogin_timeout;
	return idle;
}

/* After STARTTLS the connection is a TLS filter over the plaintext
 * bufferevent it started with. The filter re-arms its write timer after
 * every write, even once all went down to the layer under it (so a quiet
 * session would look stalled), and the layer under it keeps the timeouts
 * it had before STARTTLS (the pre-login ones) unless they are replaced
 * here: reads are timed on the filter, writes on the socket's layer. */
static void
timeouts_apply(struct net_conn *c, const struct timeval *rd,
    const struct timeval *wr)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	if (under == NULL) {
		bufferevent_set_timeouts(c->bev, rd, wr);
		return;
	}
	bufferevent_set_timeouts(c->bev, rd, NULL);
	bufferevent_set_timeouts(under, NULL, wr);
}

static void
timeouts_set(struct net_conn *c)
{
	struct timeval rd = secs(c->is_handshaking ?
	    c->rt->cfg->tls_handshake_timeout : proto_timeout(c));
	/* A client that stops reading our replies holds its slot only this
	 * long (the read timeout sleeps while input is paused). */
	struct timeval wr = secs(c->rt->cfg->write_stall_timeout);

	timeouts_apply(c, &rd, &wr);
}

static void
callbacks_set(struct net_conn *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, NET_DRAIN_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	timeouts_set(c);
}

static void conn_free(struct net_conn *c, bool is_forced);

static void
on_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg, false);
}

/* Bytes queued for the client, in every layer. */
static size_t
pending_output(struct net_conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void
free_soon(struct net_conn *c)
{
	c->is_closing = true;
	event_active(c->free_ev, 0, 0);
}

/* The session starts: at once on plain listeners, after the handshake on
 * implicit TLS ones, so that the greeting travels inside TLS. */
static void
conn_ready(struct net_conn *c)
{
	if (c->refusal != NULL) {
		if (c->ops->refuse != NULL)
			c->ops->refuse(c, c->refusal);
		net_conn_close(c);
		return;
	}
	c->session = c->ops->open(c);
}

void
net_conn_accept(struct worker *w, size_t li, evutil_socket_t fd,
    const struct sockaddr *sa, int salen)
{
	struct net_server *srv = w->srv;
	struct net_runtime *rt = net_runtime_acquire(srv);
	const struct config_listener *l = &rt->cfg->listeners[li];
	const struct net_session_ops *ops = srv->ops[l->proto];
	struct net_conn *c;
	const char *refusal;
	size_t cap;

	if (ops == NULL || w->is_stopping ||
	    (size_t)salen > sizeof(struct sockaddr_storage)) {
		close(fd);
		net_runtime_release(&rt);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->rt = rt;
	c->listener = l;
	c->ops = ops;
	memcpy(&c->addr, sa, (size_t)salen);
	refusal = conn_limits_take(srv->limits, &c->addr,
	    (unsigned)rt->cfg->ipv6_prefix, rt->cfg->max_connections,
	    rt->cfg->max_connections_per_ip);
	c->is_counted = refusal == NULL;
	c->refusal = refusal;
	snprintf(c->sid, sizeof(c->sid), "%04x%06llx", srv->sid_prefix,
	    (unsigned long long)atomic_fetch_add(&srv->next_sid, 1));
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr,
		    c->peer, sizeof(c->peer));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    c->peer, sizeof(c->peer));
	c->free_ev = event_new(w->base, -1, 0, on_free, c);
	c->resume_ev = event_new(w->base, -1, 0, on_resume, c);
	c->delay_ev = evtimer_new(w->base, on_delay_over, c);
	c->deadline_ev = evtimer_new(w->base, on_deadline, c);
	c->drain_ev = event_new(w->base, -1, 0, on_drain, c);
	c->flush_ev = event_new(w->base, -1, 0, on_flush, c);
	/* Room for one full line (an IMAP one may be longer once logged
	 * in), or a chunk of a message body. */
	cap = (rt->cfg->line_length > rt->cfg->imap_line_length ?
	    rt->cfg->line_length : rt->cfg->imap_line_length) * 2;
	buf_init(&c->in, cap < 65536 ? 65536 : cap);

	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;

	if (refusal != NULL && conn_limits_total(srv->limits) + w->nconns >
	    rt->cfg->max_connections + REFUSE_SLACK) {
		close(fd);
		net_conn_free(c);
		return;
	}
	if (l->tls == CONFIG_TLS_IMPLICIT) {
		c->bev = tls_bev_accept(rt->tls, w->base, fd);
		c->is_tls = true;
		c->is_handshaking = true;
	} else {
		c->bev = bufferevent_socket_new(w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		log_error(c->sid, "net.conn_failed peer=%s reason=\"cannot "
		    "create a bufferevent\"", c->peer);
		close(fd);
		net_conn_free(c);
		return;
	}
	metrics_conn_open(l->proto);
	c->is_metered = true;
	log_info(c->sid, "net.connect listener=%s peer=%s%s%s", l->name,
	    c->peer, refusal ? " refused=\"" : "", refusal ? refusal : "");
	callbacks_set(c);
	if (has_login(c) && refusal == NULL) {
		struct timeval tv = secs(rt->cfg->login_deadline);

		evtimer_add(c->deadline_ev, &tv);
	}
	if (!c->is_handshaking)
		conn_ready(c);
}

/* Feeds in to the session once. Returns false when the session started
 * TLS or compression (what followed the command in the old stream is
 * thrown away, RFC 3207 §4.2, RFC 4978 §3) and the caller must stop. */
static bool
feed(struct net_conn *c)
{
	c->ops->input(c->session, c, &c->in);
	if (c->has_new_layer) {
		c->has_new_layer = false;
		buf_clear(&c->in);
		return false;
	}
	return true;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	struct evbuffer *src;

	(void)bev;
	if (!is_net_conn_feeding(c))
		return;
	src = bufferevent_get_input(c->bev);
	/* Bytes left in the buffer by a pause come first. */
	if (c->has_unfed && c->session != NULL) {
		c->has_unfed = false;
		if (!feed(c))
			return;
	}
	while (is_net_conn_feeding(c) && (evbuffer_get_length(src) > 0 ||
	    (c->deflate != NULL && has_net_deflate_pending(c->deflate)))) {
		size_t room = buf_room(&c->in);
		size_t n = evbuffer_get_length(src);
		char chunk[16384];

		if (n > sizeof(chunk) || c->deflate != NULL)
			n = sizeof(chunk);
		if (n > room)
			n = room;
		if (n == 0) {
			/* The session left a full buffer unread: a bug of
			 * ours, but the client pays only with this session. */
			log_error(c->sid, "net.input_stuck bytes=%zu",
			    c->in.len);
			net_conn_close(c);
			return;
		}
		if (c->deflate == NULL) {
			evbuffer_remove(src, chunk, n);
		} else {
			/* At most room bytes come out however well the
			 * client's bytes were packed: no inflation bomb. */
			ssize_t got = net_deflate_read(c->deflate, src,
			    chunk, n);

			if (got < 0) {
				log_info(c->sid, "net.deflate_error peer=%s",
				    c->peer);
				net_conn_close(c);
				return;
			}
			if (got == 0)
				break;
			n = (size_t)got;
		}
		buf_append(&c->in, chunk, n);
		if (c->session == NULL) {
			/* Refused, or still greeting: nothing listens. */
			buf_clear(&c->in);
			continue;
		}
		if (!feed(c))
			return;
	}
}

/* A closing connection frees itself once its replies are out: first the
 * TLS (or plain) layer drains, then TLS says close_notify (RFC 8446 §6.1),
 * then the layer under TLS drains. */
static void
close_progress(struct net_conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (c->is_tls && !c->is_tls_shut) {
		c->is_tls_shut = true;
		tls_bev_shutdown(c->bev);
	}
	if (pending_output(c) == 0)
		free_soon(c);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)fd;
	(void)what;
	on_read(c->bev, c);
}

static void
pause_set(struct net_conn *c, enum pause_reason why)
{
	if (c->pauses == 0 && c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
	c->pauses |= why;
	c->has_unfed = true;
}

static void
pause_clear(struct net_conn *c, enum pause_reason why)
{
	if (!(c->pauses & why))
		return;
	c->pauses &= ~(unsigned)why;
	if (c->pauses != 0 || c->is_closing)
		return;
	bufferevent_enable(c->bev, EV_READ);
	event_active(c->resume_ev, 0, 0);
}

bool
is_net_conn_feeding(struct net_conn *c)
{
	if (c->is_closing || c->pauses != 0)
		return false;
	/* A client that sends commands and never reads the replies must not
	 * make us queue them without bound: read on once they drain. */
	if (pending_output(c) >= NET_DRAIN_LOW) {
		pause_set(c, PAUSE_OUTPUT);
		return false;
	}
	return true;
}

bool
is_net_conn_closing(const struct net_conn *c)
{
	return c->is_closing;
}

void
net_conn_pause(struct net_conn *c)
{
	pause_set(c, PAUSE_SESSION);
}

void
net_conn_resume(struct net_conn *c)
{
	pause_clear(c, PAUSE_SESSION);
}

void
net_conn_wait(struct net_conn *c)
{
	c->waits++;
	pause_set(c, PAUSE_WAIT);
}

bool
net_conn_unwait(struct net_conn *c)
{
	if (c->waits == 0)
		panic("net_conn_unwait without net_conn_wait");
	c->waits--;
	if (c->is_closing) {
		/* The session is freed after this loop turn, once nothing
		 * more is awaited. */
		if (c->waits == 0 && c->is_transport_gone)
			event_active(c->free_ev, 0, 0);
		return false;
	}
	if (c->waits == 0)
		pause_clear(c, PAUSE_WAIT);
	return true;
}

bool
is_net_conn_waiting(const struct net_conn *c)
{
	return c->waits > 0;
}

static void
on_delay_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pause_clear(arg, PAUSE_DELAY);
}

void
net_conn_delay(struct net_conn *c, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) *
	    1000 };

	if (c->is_closing)
		return;
	pause_set(c, PAUSE_DELAY);
	evtimer_add(c->delay_ev, &tv);
}

void
net_conn_logged_in(struct net_conn *c)
{
	c->is_logged_in = true;
	evtimer_del(c->deadline_ev);
	if (c->bev != NULL && !c->is_closing)
		timeouts_set(c);
}

/* A session that never logs in gets this long in all, however busy it
 * keeps the connection. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->is_closing)
		return;
	log_info(c->sid, "net.timeout during=login seconds=%llu",
	    (unsigned long long)c->rt->cfg->login_deadline);
	if (c->session != NULL && !c->is_handshaking)
		c->ops->timeout(c->session, c);
	net_conn_close(c);
}

struct event_base *
net_conn_base(const struct net_conn *c)
{
	return c->w->base;
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;

	(void)bev;
	if (c->is_closing) {
		close_progress(c);
		return;
	}
	pause_clear(c, PAUSE_OUTPUT);
	if (c->session != NULL && c->ops->drained != NULL)
		c->ops->drained(c->session, c);
}

size_t
net_conn_pending(const struct net_conn *c)
{
	return pending_output((struct net_conn *)c);
}

/* Watches the plaintext layer under TLS: after STARTTLS the last bytes of
 * a closing connection may sit there once the TLS layer is empty. */
static void
on_under_drain(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct net_conn *c = arg;

	(void)out;
	if (info->n_deleted == 0)
		return;
	if (c->is_closing)
		close_progress(c);
	else if (pending_output(c) < NET_DRAIN_LOW)
		/* The filter's own write callback does not fire for this: a
		 * paused input and a streamed reply go on from the loop. */
		event_active(c->drain_ev, 0, 0);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->bev == NULL || c->is_closing)
		return;
	on_write(c->bev, c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->is_handshaking = false;
		metrics_tls_handshake(c->listener->proto, true);
		timeouts_set(c);
		log_debug(c->sid, "tls.established version=%s cipher=%s",
		    tls_bev_version(c->bev), tls_bev_cipher(c->bev));
		if (c->session == NULL && !c->is_closing)
			conn_ready(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->is_closing) {
			free_soon(c);
			return;
		}
		if (c->is_handshaking || c->session == NULL) {
			if (c->is_handshaking)
				metrics_tls_handshake(
				    c->listener->proto, false);
			log_info(c->sid, "net.timeout during=tls_handshake");
			free_soon(c);
			return;
		}
		if (what & BEV_EVENT_WRITING) {
			/* Nothing we sent was read for write_stall: a goodbye
			 * would not be read either. */
			log_info(c->sid, "net.timeout during=write seconds=%llu",
			    (unsigned long long)c->rt->cfg->write_stall_timeout);
			free_soon(c);
			return;
		}
		log_info(c->sid, "net.timeout idle_seconds=%llu",
		    (unsigned long long)proto_timeout(c));
		c->ops->timeout(c->session, c);
		net_conn_close(c);
		return;
	}
	/* EOF or error: the client is gone; nothing more can reach it. */
	if (c->is_handshaking && !c->is_closing)
		metrics_tls_handshake(c->listener->proto, false);
	if (what & BEV_EVENT_ERROR) {
		log_debug(c->sid, "net.error during=%s",
		    c->is_handshaking ? "tls_handshake" : "session");
	}
	free_soon(c);
}

const char *
net_conn_sid(const struct net_conn *c)
{
	return c->sid;
}

void *
net_conn_ctx(const struct net_conn *c)
{
	return c->w->srv->ctx[c->listener->proto];
}

const struct config *
net_conn_config(const struct net_conn *c)
{
	return c->rt->cfg;
}

const struct config_listener *
net_conn_listener(const struct net_conn *c)
{
	return c->listener;
}

unsigned
net_conn_listener_port(const struct net_conn *c,
    const struct config_listener *l)
{
	const struct config *cfg = c->rt->cfg;

	if (l < cfg->listeners || l >= cfg->listeners + cfg->nlisteners)
		panic("net_conn_listener_port: not a listener of the "
		    "connection's configuration");
	/* A reload never changes the listeners (they need a restart), so
	 * the index is the one the server bound. */
	if ((size_t)(l - cfg->listeners) >= c->w->srv->nlisteners)
		return l->port;
	return c->w->srv->ports[l - cfg->listeners];
}

const char *
net_conn_peer(const struct net_conn *c)
{
	return c->peer;
}

bool
is_net_conn_tls(const struct net_conn *c)
{
	return c->is_tls;
}

const char *
net_conn_tls_version(const struct net_conn *c)
{
	return c->is_tls ? tls_bev_version(c->bev) : NULL;
}

const char *
net_conn_tls_cipher(const struct net_conn *c)
{
	return c->is_tls ? tls_bev_cipher(c->bev) : NULL;
}

void
net_conn_write(struct net_conn *c, const void *data, size_t len)
{
	if (c->is_closing)
		return;
	if (c->deflate == NULL) {
		bufferevent_write(c->bev, data, len);
		return;
	}
	/* Compressed replies are flushed once the loop turn's callbacks
	 * have written theirs (on_flush), not one sync flush per write. */
	net_deflate_write(c->deflate, bufferevent_get_output(c->bev), data,
	    len);
	event_active(c->flush_ev, EV_TIMEOUT, 0);
}

void
net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	if (c->is_closing)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("net_conn_printf: bad format");
	if ((size_t)n < sizeof(small)) {
		net_conn_write(c, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);

	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	net_conn_write(c, big, (size_t)n);
	free(big);
}

/* Ends a burst of compressed replies. */
static void
deflate_flush(struct net_conn *c)
{
	if (c->deflate != NULL && c->bev != NULL &&
	    is_net_deflate_dirty(c->deflate))
		net_deflate_flush(c->deflate, bufferevent_get_output(c->bev));
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deflate_flush(arg);
}

int
net_conn_compress(struct net_conn *c)
{
	if (c->deflate != NULL || c->is_closing)
		return -1;
	c->deflate = net_deflate_new();
	c->has_new_layer = true;
	return 0;
}

bool
is_net_conn_compressed(const struct net_conn *c)
{
	return c->deflate != NULL;
}

int
net_conn_sign(const struct net_conn *c, const char *host, const void *data,
    size_t len, unsigned char **der_out, size_t *len_out)
{
	return tls_set_sign(c->rt->tls, host, data, len, der_out, len_out);
}

int
net_conn_starttls(struct net_conn *c)
{
	struct bufferevent *tls;

	if (c->is_tls || c->listener->tls != CONFIG_TLS_STARTTLS ||
	    !has_tls_set_certs(c->rt->tls))
		return -1;
	/* The reply already queued on the plain bufferevent goes out before
	 * the first TLS byte: the filter writes into it behind the reply. */
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	tls = tls_bev_filter(c->rt->tls, c->w->base, c->bev);
	if (tls == NULL)
		return -1;
	c->bev = tls;
	c->is_tls = true;
	c->is_handshaking = true;
	c->has_new_layer = true;
	/* RFC 3207 §4.2: the session forgets a login made in plaintext
	 * (only possible with allow_plaintext_auth); so do the timeouts. */
	if (c->is_logged_in && has_login(c)) {
		struct timeval tv = secs(c->rt->cfg->login_deadline);

		c->is_logged_in = false;
		evtimer_add(c->deadline_ev, &tv);
	}
	callbacks_set(c);
	evbuffer_add_cb(bufferevent_get_output(bufferevent_get_underlying(tls)),
	    on_under_drain, c);
	return 0;
}

void
net_conn_close(struct net_conn *c)
{
	struct timeval tv = secs(CLOSE_FLUSH_SECS);

	if (c->is_closing)
		return;
	deflate_flush(c);
	c->is_closing = true;
	evtimer_del(c->delay_ev);
	evtimer_del(c->deadline_ev);
	bufferevent_disable(c->bev, EV_READ);
	timeouts_apply(c, NULL, &tv);
	close_progress(c);
}

void
net_conn_close_all(struct worker *w)
{
	for (struct net_conn *c = w->conns; c != NULL; c = c->next) {
		if (c->is_closing)
			continue;
		if (c->session != NULL)
			c->ops->shutdown(c->session, c);
		net_conn_close(c);
	}
}

void
net_conn_drop_all(struct worker *w)
{
	for (struct net_conn *c = w->conns; c != NULL; c = c->next)
		free_soon(c);
}

/* Closes the socket and gives back the connection's slot. */
static void
transport_release(struct net_conn *c)
{
	struct bufferevent *under;

	if (c->is_transport_gone)
		return;
	c->is_transport_gone = true;
	c->is_closing = true;
	if (c->bev != NULL) {
		under = bufferevent_get_underlying(c->bev);
		/* Callbacks still queued in libevent must not reach c. */
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		if (under != NULL)
			evbuffer_remove_cb(bufferevent_get_output(under),
			    on_under_drain, c);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->is_metered)
		metrics_conn_close(c->listener->proto);
	c->is_metered = false;
	if (c->is_counted)
		conn_limits_drop(c->w->srv->limits, &c->addr,
		    (unsigned)c->rt->cfg->ipv6_prefix);
	c->is_counted = false;
	evtimer_del(c->delay_ev);
	evtimer_del(c->deadline_ev);
	log_debug(c->sid, "net.close peer=%s", c->peer);
}

/* Frees c and its session, unless the session still waits for a callback
 * (then net_conn_unwait() frees it later) or is_forced (worker teardown). */
static void
conn_free(struct net_conn *c, bool is_forced)
{
	struct worker *w = c->w;

	transport_release(c);
	if (c->waits > 0 && !is_forced)
		return;
	if (c->session != NULL)
		c->ops->close(c->session);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	event_free(c->free_ev);
	event_free(c->resume_ev);
	event_free(c->delay_ev);
	event_free(c->deadline_ev);
	event_free(c->drain_ev);
	event_free(c->flush_ev);
	if (c->deflate != NULL) {
		uint64_t ro, po, ri, pi;

		net_deflate_stats(c->deflate, &ro, &po, &ri, &pi);
		log_info(c->sid, "net.deflate out=%" PRIu64 " sent=%" PRIu64
		    " in=%" PRIu64 " received=%" PRIu64, ro, po, ri, pi);
		net_deflate_free(&c->deflate);
	}
	buf_deinit(&c->in);
	net_runtime_release(&c->rt);
	free(c);
	if (w->is_stopping && w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

void
net_conn_free(struct net_conn *c)
{
	conn_free(c, true);
}
