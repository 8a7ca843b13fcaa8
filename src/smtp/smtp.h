/*
 * smtp: SMTP server sessions for the smtp (port 25) and submission
 * (587, 465) listeners. Sessions run on their connection's worker thread.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include "net/net.h"

struct store;
struct auth;
struct authn;

/* What every SMTP session shares (net_conn_ctx). */
struct smtp_ctx {
	struct store *store;
	struct auth *auth;
	struct authn *authn;	/* SPF on port 25; NULL: none (tests) */
};

extern const struct net_session_ops smtp_session_ops;

#endif
