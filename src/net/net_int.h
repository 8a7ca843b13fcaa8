/*
 * net_int: what the files of src/net share. The TLS functions are the only
 * place of net that calls OpenSSL (net/tls*.c).
 */
#ifndef POSTERN_NET_INT_H
#define POSTERN_NET_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net/net.h"

/* The certificates of one configuration: one SSL_CTX per [certificate],
 * the first one served when the client sends no SNI or a name no
 * certificate covers. Shared by every worker; refcounted because open
 * connections keep the set they started with across a reload. */
struct tls_set;

/* Loads every certificate of cfg. Returns a set (NULL-free even when cfg
 * has no certificate), or NULL with err set. */
struct tls_set *tls_set_new(const struct config *cfg, char *err,
    size_t errlen);
bool has_tls_set_certs(const struct tls_set *set);
/* PKCS#7 SignedData (DER, content attached) of len bytes of data, signed
 * with the key of the certificate that covers host (else the default one)
 * and carrying its chain. Returns 0 with *der_out (caller frees) and
 * *len_out, or -1 (no certificate, or OpenSSL failed). */
int tls_set_sign(struct tls_set *set, const char *host, const void *data,
    size_t len, unsigned char **der_out, size_t *len_out);
void tls_set_free(struct tls_set **set);

/* A bufferevent that accepts TLS on fd (implicit TLS), or that runs TLS
 * over the plaintext bufferevent under (STARTTLS; the new one owns it).
 * Returns NULL when OpenSSL cannot make a session. */
struct bufferevent *tls_bev_accept(struct tls_set *set,
    struct event_base *base, evutil_socket_t fd);
struct bufferevent *tls_bev_filter(struct tls_set *set,
    struct event_base *base, struct bufferevent *under);
/* Protocol version and cipher of a TLS bufferevent, NULL before the
 * handshake ends. */
const char *tls_bev_version(struct bufferevent *bev);
const char *tls_bev_cipher(struct bufferevent *bev);
/* Sends close_notify once the handshake is over (RFC 8446 §6.1). */
void tls_bev_shutdown(struct bufferevent *bev);

/* OpenSSL's types, named without its headers (net_int.h is read by files
 * that do not call OpenSSL). */
struct ssl_st;
struct ssl_ctx_st;

/* Sets what every server context of ours has (tls.c). Returns -1 when
 * OpenSSL refuses the cipher list. */
int tls_ctx_setup(struct ssl_ctx_st *ctx);
/* Switches the handshake ssl to the ACME certificate when there is one
 * and it covers name (any name when NULL). Returns whether it did
 * (tls_acme.c). */
bool tls_acme_ctx_use(struct ssl_st *ssl, const char *name);
/* The ACME certificate's context with a reference of the caller's
 * (SSL_CTX_free), when there is one and it covers name (any name when
 * NULL); else NULL. */
struct ssl_ctx_st *tls_acme_ctx_get(const char *name);
/* The ALPN callback of every server context: answers "acme-tls/1" for a
 * name with a pending TLS-ALPN-01 challenge (RFC 8737). */
int tls_acme_alpn_select(struct ssl_st *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned inlen,
    void *arg);

/* The raw DEFLATE streams of a compressed connection (RFC 4978). */
struct net_deflate;

struct net_deflate *net_deflate_new(void);
void net_deflate_free(struct net_deflate **z);
/* Compresses len bytes of data into dst (buffered until a flush). */
void net_deflate_write(struct net_deflate *z, struct evbuffer *dst,
    const void *data, size_t len);
/* Whether bytes were written since the last flush. */
bool is_net_deflate_dirty(const struct net_deflate *z);
/* Ends a burst of replies: everything written so far goes to dst, ending
 * on a byte boundary (sync flush), and the compressor's memory is freed
 * until the next write. */
void net_deflate_flush(struct net_deflate *z, struct evbuffer *dst);
/* Inflates what src holds (draining what was used) into dst, at most room
 * bytes. Returns the bytes given, 0 when src has nothing to give, or -1
 * when the stream is corrupt or goes on after its final block. */
ssize_t net_deflate_read(struct net_deflate *z, struct evbuffer *src,
    void *dst, size_t room);
/* Whether the last read filled dst and zlib may hold more output. */
bool has_net_deflate_pending(const struct net_deflate *z);
/* Bytes before and after compression, both ways, for the close log. */
void net_deflate_stats(const struct net_deflate *z, uint64_t *raw_out,
    uint64_t *packed_out, uint64_t *raw_in, uint64_t *packed_in);

/* The configuration and certificates new connections use. Replaced as a
 * whole on reload; each connection holds a reference to its own. */
struct net_runtime {
	atomic_uint refs;
	struct config *cfg;
	struct tls_set *tls;
};

/* Counts connections in total and per client address, for every worker. */
struct conn_limits;

struct conn_limits *conn_limits_new(void);
void conn_limits_free(struct conn_limits **lim);
/* Counts a new connection from addr; IPv6 addresses count by their first
 * v6_prefix bits. Returns NULL when accepted, or the reason (a sentence)
 * when a limit is reached; nothing is counted then. */
const char *conn_limits_take(struct conn_limits *lim,
    const struct sockaddr_storage *addr, unsigned v6_prefix,
    uint64_t max_total, uint64_t max_per_ip);
/* Releases what conn_limits_take() counted for addr (same v6_prefix). */
void conn_limits_drop(struct conn_limits *lim,
    const struct sockaddr_storage *addr, unsigned v6_prefix);
/* Connections counted in total. */
uint64_t conn_limits_total(struct conn_limits *lim);

struct worker {
	struct net_server *srv;
	unsigned index;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener **listeners;	/* one per listener */
	struct event *stop_ev;		/* activated by net_server_stop */
	struct event *grace_ev;
	struct event *deadline_ev;
	struct net_conn *conns;		/* every open connection */
	size_t nconns;
	bool is_stopping;
};

struct net_server {
	pthread_mutex_t runtime_mu;
	struct net_runtime *runtime;	/* guarded by runtime_mu */
	const struct net_session_ops *ops[CONFIG_PROTO_HTTP + 1];
	void *ctx[CONFIG_PROTO_HTTP + 1];
	size_t nlisteners;
	uint16_t *ports;		/* bound port of each listener */
	evutil_socket_t *fds;		/* [worker * nlisteners + listener] */
	struct worker *workers;
	unsigned nworkers;
	bool is_started;
	struct conn_limits *limits;
	atomic_uint_fast64_t next_sid;
	unsigned sid_prefix;
};

/* Takes a reference to the runtime new connections use. */
struct net_runtime *net_runtime_acquire(struct net_server *srv);
void net_runtime_release(struct net_runtime **rt);

/* Starts a connection accepted by w on listener li. Takes fd. */
void net_conn_accept(struct worker *w, size_t li, evutil_socket_t fd,
    const struct sockaddr *sa, int salen);
/* Says goodbye on every connection of w and closes them (shutdown). */
void net_conn_close_all(struct worker *w);
/* Ends every connection of w at once, replies unsent (the shutdown
 * deadline); each is freed once its session waits for no callback. */
void net_conn_drop_all(struct worker *w);
/* Frees a connection right away (worker teardown). */
void net_conn_free(struct net_conn *c);

#endif
