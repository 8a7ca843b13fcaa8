/*
 * imap: IMAP server sessions for the imap listeners (143 with STARTTLS,
 * 993 with implicit TLS). Sessions run on their connection's worker
 * thread.
 */
#ifndef POSTERN_IMAP_H
#define POSTERN_IMAP_H

#include "net/net.h"

struct store;
struct auth;

/* What every IMAP session shares (net_conn_ctx). */
struct imap_ctx {
	struct store *store;
	struct auth *auth;
};

extern const struct net_session_ops imap_session_ops;

#endif
