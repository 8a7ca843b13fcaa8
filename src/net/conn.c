/*
 * conn: one client connection on one worker: its bufferevent (plain, TLS,
 * or TLS over plain after STARTTLS), its input buffer, its limits and
 * timeouts, and the protocol session riding on it. Only the worker that
 * accepted a connection touches it. A connection is never freed inside
 * its own callbacks: closing marks it, and a zero-delay event frees it on
 * the next loop turn.
 */
#include "net/net_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/util.h"

/* How long a closing connection may take to flush its last reply. */
#define CLOSE_FLUSH_SECS 10
/* Refused connections beyond the limits still cost a socket; past this
 * many over the limit they are dropped without a word. */
#define REFUSE_SLACK 64

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
	struct net_conn *prev, *next;
	bool is_tls;
	bool is_handshaking;
	bool is_counted;	/* holds a slot in the limits */
	bool is_closing;
	bool is_tls_shut;	/* close_notify sent */
	bool has_starttls;	/* STARTTLS began inside input() */
	bool is_paused;		/* the session waits: no input() */
	bool has_unfed;		/* a pause left parsed-later bytes in in */
	char sid[24];
	char peer[INET6_ADDRSTRLEN];
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static struct timeval
secs(uint64_t n)
{
	struct timeval tv = { (time_t)n, 0 };

	return tv;
}

static uint64_t
proto_timeout(const struct net_conn *c)
{
	const struct config *cfg = c->rt->cfg;

	switch (c->listener->proto) {
	case CONFIG_PROTO_IMAP:
		return cfg->imap_timeout;
	case CONFIG_PROTO_POP3:
		return cfg->pop3_timeout;
	default:
		return cfg->smtp_timeout;
	}
}

static void
timeouts_set(struct net_conn *c)
{
	struct timeval tv = secs(c->is_handshaking ?
	    c->rt->cfg->tls_handshake_timeout : proto_timeout(c));

	bufferevent_set_timeouts(c->bev, &tv, NULL);
}

static void
callbacks_set(struct net_conn *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, NET_DRAIN_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	timeouts_set(c);
}

static void
on_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	net_conn_free(arg);
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
	    rt->cfg->max_connections, rt->cfg->max_connections_per_ip);
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
	/* Room for one full line, or a chunk of a message body. */
	cap = rt->cfg->line_length * 2;
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
	log_info(c->sid, "net.connect listener=%s peer=%s%s%s", l->name,
	    c->peer, refusal ? " refused=\"" : "", refusal ? refusal : "");
	callbacks_set(c);
	if (!c->is_handshaking)
		conn_ready(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	struct evbuffer *src = bufferevent_get_input(bev);

	if (c->is_paused)
		return;
	/* Bytes left in the buffer by a pause come first. */
	if (c->has_unfed && c->session != NULL) {
		c->has_unfed = false;
		c->ops->input(c->session, c, &c->in);
		if (c->has_starttls) {
			c->has_starttls = false;
			buf_clear(&c->in);
			return;
		}
	}
	while (!c->is_closing && !c->is_paused &&
	    evbuffer_get_length(src) > 0) {
		size_t room = buf_room(&c->in);
		size_t n = evbuffer_get_length(src);
		char chunk[16384];

		if (n > sizeof(chunk))
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
		evbuffer_remove(src, chunk, n);
		buf_append(&c->in, chunk, n);
		if (c->session == NULL) {
			/* Refused, or still greeting: nothing listens. */
			buf_clear(&c->in);
			continue;
		}
		c->ops->input(c->session, c, &c->in);
		if (c->has_starttls) {
			/* RFC 3207 §4.2: what followed STARTTLS in plaintext
			 * is thrown away. */
			c->has_starttls = false;
			buf_clear(&c->in);
			return;
		}
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
	if (c->is_closing || c->is_paused)
		return;
	on_read(c->bev, c);
}

void
net_conn_pause(struct net_conn *c)
{
	c->is_paused = true;
	c->has_unfed = true;
	bufferevent_disable(c->bev, EV_READ);
}

void
net_conn_resume(struct net_conn *c)
{
	if (!c->is_paused || c->is_closing)
		return;
	c->is_paused = false;
	bufferevent_enable(c->bev, EV_READ);
	event_active(c->resume_ev, 0, 0);
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
	if (info->n_deleted > 0 && c->is_closing)
		close_progress(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->is_handshaking = false;
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
			log_info(c->sid, "net.timeout during=tls_handshake");
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
	bufferevent_write(c->bev, data, len);
}

void
net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->is_closing)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
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
	c->has_starttls = true;
	callbacks_set(c);
	return 0;
}

void
net_conn_close(struct net_conn *c)
{
	struct bufferevent *under;
	struct timeval tv = secs(CLOSE_FLUSH_SECS);

	if (c->is_closing)
		return;
	c->is_closing = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	under = bufferevent_get_underlying(c->bev);
	if (under != NULL)
		evbuffer_add_cb(bufferevent_get_output(under), on_under_drain,
		    c);
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
net_conn_free(struct net_conn *c)
{
	struct worker *w = c->w;

	if (c->session != NULL)
		c->ops->close(c->session);
	if (c->bev != NULL) {
		struct bufferevent *under = bufferevent_get_underlying(c->bev);

		/* Callbacks still queued in libevent must not reach c. */
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		if (under != NULL)
			evbuffer_remove_cb(bufferevent_get_output(under),
			    on_under_drain, c);
		bufferevent_free(c->bev);
	}
	if (c->is_counted)
		conn_limits_drop(w->srv->limits, &c->addr);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	log_debug(c->sid, "net.close peer=%s", c->peer);
	event_free(c->free_ev);
	event_free(c->resume_ev);
	buf_deinit(&c->in);
	net_runtime_release(&c->rt);
	free(c);
	if (w->is_stopping && w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}
