/*
 * pop3: POP3 server sessions for the pop3 listeners (110 with STLS, 995
 * with implicit TLS). Sessions run on their connection's worker thread.
 */
#ifndef POSTERN_POP3_H
#define POSTERN_POP3_H

#include <pthread.h>
#include <stdint.h>

#include "net/net.h"

struct store;
struct auth;

/* What every POP3 session shares (net_conn_ctx). RFC 1939 §8: one POP3
 * session per maildrop at a time, across every worker, hence the set of
 * maildrops in use under a mutex. */
struct pop3_ctx {
	struct store *store;
	struct auth *auth;
	pthread_mutex_t mu;
	int64_t *in_use;	/* accounts with a POP3 session */
	size_t nin_use;
};

void pop3_ctx_init(struct pop3_ctx *ctx, struct store *st, struct auth *a);
void pop3_ctx_deinit(struct pop3_ctx *ctx);

extern const struct net_session_ops pop3_session_ops;

#endif
