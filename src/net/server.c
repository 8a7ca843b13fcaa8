/*
 * server: binds the listeners, runs the worker threads (DESIGN.md, Process
 * model), swaps configuration on reload and drains on shutdown. The main
 * thread calls every function here; workers only run worker_main().
 */
#include "net/net_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "lib/log.h"
#include "lib/util.h"

/* After the grace period and the goodbyes, a worker waits this long for
 * its last connections to flush before it stops regardless. */
#define DRAIN_DEADLINE_SECS 5

static void
runtime_free(struct net_runtime *rt)
{
	config_free(&rt->cfg);
	tls_set_free(&rt->tls);
	free(rt);
}

struct net_runtime *
net_runtime_acquire(struct net_server *srv)
{
	struct net_runtime *rt;

	pthread_mutex_lock(&srv->runtime_mu);
	rt = srv->runtime;
	atomic_fetch_add(&rt->refs, 1);
	pthread_mutex_unlock(&srv->runtime_mu);
	return rt;
}

void
net_runtime_release(struct net_runtime **rtp)
{
	struct net_runtime *rt = *rtp;

	if (rt == NULL)
		return;
	*rtp = NULL;
	if (atomic_fetch_sub(&rt->refs, 1) == 1)
		runtime_free(rt);
}

static int
sockaddr_fill(const char *address, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* Binds one socket of a listener. With is_shared, SO_REUSEPORT lets every
 * worker bind its own socket to the same port and the kernel spreads the
 * connections among them. */
static evutil_socket_t
socket_bind(const struct config_listener *l, uint16_t port, bool is_shared,
    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1;
	evutil_socket_t fd;

	if (sockaddr_fill(l->address, port, &ss, &sslen) < 0)
		panic("listener address %s passed validation", l->address);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (is_shared &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0)
		goto fail;
	if (is_shared && listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listener %s: cannot listen on %s port %u: %s",
	    l->name, l->address, port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Binds the sockets of listener li for every worker. The first bind
 * decides the port (an ephemeral one for port 0). */
static int
listener_bind(struct net_server *srv, const struct config_listener *l,
    size_t li, char *err, size_t errlen)
{
	uint16_t port = l->port;

	if (port != 0) {
		/* SO_REUSEPORT would let us share a port with another
		 * running postern; a plain bind first proves it is free. */
		evutil_socket_t probe = socket_bind(l, port, false, err,
		    errlen);

		if (probe < 0)
			return -1;
		close(probe);
	}
	for (unsigned w = 0; w < srv->nworkers; w++) {
		evutil_socket_t fd = socket_bind(l, port, true, err, errlen);

		if (fd < 0)
			return -1;
		srv->fds[w * srv->nlisteners + li] = fd;
		if (port == 0) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			getsockname(fd, (struct sockaddr *)&ss, &len);
			port = ntohs(ss.ss_family == AF_INET ?
			    ((struct sockaddr_in *)&ss)->sin_port :
			    ((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	srv->ports[li] = port;
	return 0;
}

struct net_server *
net_server_new(const struct config *cfg, char *err, size_t errlen)
{
	struct net_server *srv = xcalloc(1, sizeof(*srv));
	struct net_runtime *rt = xcalloc(1, sizeof(*rt));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	evthread_use_pthreads();
	pthread_mutex_init(&srv->runtime_mu, NULL);
	atomic_init(&rt->refs, 1);
	srv->runtime = rt;
	srv->limits = conn_limits_new();
	srv->nworkers = cfg->workers ? cfg->workers :
	    (unsigned)(ncpu > 0 ? ncpu : 1);
	srv->nlisteners = cfg->nlisteners;
	srv->ports = xcalloc(cfg->nlisteners, sizeof(*srv->ports));
	srv->fds = xcalloc(srv->nworkers * cfg->nlisteners,
	    sizeof(*srv->fds));
	for (size_t i = 0; i < srv->nworkers * cfg->nlisteners; i++)
		srv->fds[i] = -1;
	srv->sid_prefix = (unsigned)getpid() & 0xffff;
	rt->tls = tls_set_new(cfg, err, errlen);
	if (rt->tls == NULL)
		goto fail;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		if (listener_bind(srv, &cfg->listeners[i], i, err, errlen) < 0)
			goto fail;
	}
	/* The runtime owns cfg from here; the caller keeps borrowing it. */
	rt->cfg = (struct config *)cfg;
	return srv;
fail:
	net_server_free(&srv);
	return NULL;
}

void
net_server_set_ops(struct net_server *srv, enum config_proto proto,
    const struct net_session_ops *ops, void *ctx)
{
	srv->ops[proto] = ops;
	srv->ctx[proto] = ctx;
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct worker *w = arg;
	size_t li;

	for (li = 0; li < w->srv->nlisteners; li++) {
		if (w->listeners[li] == lev)
			break;
	}
	net_conn_accept(w, li, fd, sa, salen);
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct worker *w = arg;

	(void)lev;
	/* EMFILE and friends: logged; libevent keeps the listener. */
	log_error(NULL, "net.accept_failed worker=%u error=\"%s\"", w->index,
	    strerror(errno));
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	/* Every connection ends now, but a session still waiting for auth
	 * or the store is freed only when its callback comes (both run until
	 * the workers are gone): freed here, the callback would find it
	 * freed. The loop ends with the last connection (conn_free). */
	net_conn_drop_all(w);
	if (w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

static void
on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval deadline = { DRAIN_DEADLINE_SECS, 0 };

	(void)fd;
	(void)what;
	net_conn_close_all(w);
	if (w->nconns == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	w->deadline_ev = evtimer_new(w->base, on_deadline, w);
	evtimer_add(w->deadline_ev, &deadline);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct net_runtime *rt = net_runtime_acquire(w->srv);
	struct timeval grace = { (time_t)rt->cfg->shutdown_grace, 0 };

	(void)fd;
	(void)what;
	net_runtime_release(&rt);
	w->is_stopping = true;
	for (size_t i = 0; i < w->srv->nlisteners; i++) {
		if (w->listeners[i] != NULL)
			evconnlistener_free(w->listeners[i]);
		w->listeners[i] = NULL;
	}
	if (w->nconns == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	w->grace_ev = evtimer_new(w->base, on_grace_over, w);
	evtimer_add(w->grace_ev, &grace);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	/* Not "until nothing is pending": at the shutdown deadline a session
	 * may wait for a callback that no event of this base announces yet
	 * (it comes from auth or the store); conn_free() ends the loop. */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	while (w->conns != NULL)
		net_conn_free(w->conns);
	return NULL;
}

static int
worker_init(struct net_server *srv, struct worker *w, unsigned index,
    char *err, size_t errlen)
{
	w->srv = srv;
	w->index = index;
	w->base = event_base_new();
	if (w->base == NULL) {
		snprintf(err, errlen, "cannot create an event loop");
		return -1;
	}
	w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
	w->listeners = xcalloc(srv->nlisteners, sizeof(*w->listeners));
	for (size_t li = 0; li < srv->nlisteners; li++) {
		evutil_socket_t *fd = &srv->fds[index * srv->nlisteners + li];

		/* Backlog 0: the socket is already listening. */
		w->listeners[li] = evconnlistener_new(w->base, on_accept, w,
		    LEV_OPT_CLOSE_ON_FREE, 0, *fd);
		if (w->listeners[li] == NULL) {
			snprintf(err, errlen, "cannot watch a listener socket");
			return -1;
		}
		*fd = -1;	/* the listener owns it now */
		evconnlistener_set_error_cb(w->listeners[li],
		    on_accept_error);
	}
	return 0;
}

int
net_server_start(struct net_server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->runtime->cfg;
	sigset_t block, old;

	srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
	for (unsigned i = 0; i < srv->nworkers; i++) {
		if (worker_init(srv, &srv->workers[i], i, err, errlen) < 0)
			return -1;
	}
	for (size_t li = 0; li < srv->nlisteners; li++) {
		const struct config_listener *l = &cfg->listeners[li];

		if (srv->ops[l->proto] == NULL)
			log_warn(NULL, "listener.unserved name=%s protocol=%s "
			    "reason=\"this protocol is not served yet; "
			    "connections are closed\"", l->name,
			    config_proto_name(l->proto));
		log_info(NULL, "listener.ready name=%s address=%s port=%u "
		    "protocol=%s tls=%s", l->name, l->address, srv->ports[li],
		    config_proto_name(l->proto), config_tls_name(l->tls));
	}
	/* Signals are the main thread's: workers never see them. */
	sigfillset(&block);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		int rc = pthread_create(&srv->workers[i].thread, NULL,
		    worker_main, &srv->workers[i]);

		if (rc != 0)
			panic("cannot start a worker thread: %s",
			    strerror(rc));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	srv->is_started = true;
	log_info(NULL, "server.ready workers=%u listeners=%zu hostname=%s",
	    srv->nworkers, srv->nlisteners, cfg->hostname);
	return 0;
}

int
net_server_reload(struct net_server *srv, const struct config *cfg,
    char *err, size_t errlen)
{
	const struct config *old = srv->runtime->cfg;
	struct net_runtime *rt, *prev;

	/* Sockets are bound as root before the privilege drop, so a new
	 * listener cannot be opened here. */
	bool is_same = cfg->nlisteners == old->nlisteners;

	for (size_t i = 0; is_same && i < cfg->nlisteners; i++)
		is_same = is_config_listener_same(&cfg->listeners[i],
		    &old->listeners[i]);
	if (!is_same) {
		snprintf(err, errlen, "%s: listeners changed; restart postern "
		    "to apply listener changes", cfg->path);
		return -1;
	}
	rt = xcalloc(1, sizeof(*rt));
	rt->tls = tls_set_new(cfg, err, errlen);
	if (rt->tls == NULL) {
		free(rt);
		return -1;
	}
	atomic_init(&rt->refs, 1);
	rt->cfg = (struct config *)cfg;
	pthread_mutex_lock(&srv->runtime_mu);
	prev = srv->runtime;
	srv->runtime = rt;
	pthread_mutex_unlock(&srv->runtime_mu);
	net_runtime_release(&prev);
	return 0;
}

void
net_server_stop(struct net_server *srv)
{
	if (!srv->is_started)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++)
		event_active(srv->workers[i].stop_ev, 0, 0);
	for (unsigned i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	srv->is_started = false;
}

void
net_server_free(struct net_server **srvp)
{
	struct net_server *srv = *srvp;

	if (srv == NULL)
		return;
	net_server_stop(srv);
	for (unsigned i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		for (size_t li = 0; w->listeners && li < srv->nlisteners;
		    li++) {
			if (w->listeners[li] != NULL)
				evconnlistener_free(w->listeners[li]);
		}
		free(w->listeners);
		if (w->stop_ev != NULL)
			event_free(w->stop_ev);
		if (w->grace_ev != NULL)
			event_free(w->grace_ev);
		if (w->deadline_ev != NULL)
			event_free(w->deadline_ev);
		if (w->base != NULL) {
			/* Completions queued after the loop stopped (the
			 * store, auth) free what they hold. */
			event_base_loop(w->base, EVLOOP_NONBLOCK);
			event_base_free(w->base);
		}
	}
	free(srv->workers);
	for (size_t i = 0; i < srv->nworkers * srv->nlisteners; i++) {
		if (srv->fds[i] >= 0)
			close(srv->fds[i]);
	}
	free(srv->fds);
	free(srv->ports);
	net_runtime_release(&srv->runtime);
	conn_limits_free(&srv->limits);
	pthread_mutex_destroy(&srv->runtime_mu);
	free(srv);
	*srvp = NULL;
}
