/*
 * http: the HTTP/1.1 server of the http listeners (plain, or HTTPS with
 * implicit TLS): client autoconfiguration for every domain we serve
 * (Thunderbird autoconfig, Outlook Autodiscover, Apple .mobileconfig),
 * its MTA-STS policy (HTTPS only) and, on listeners with metrics = yes,
 * /metrics (Prometheus) and /healthz.
 * Sessions run on their connection's worker thread, through net like
 * every other protocol (limits, timeouts, TLS, shutdown).
 */
#ifndef POSTERN_HTTP_H
#define POSTERN_HTTP_H

#include "net/net.h"

struct store;

/* What every HTTP session shares (net_conn_ctx). */
struct http_ctx {
	struct store *store;
};

extern const struct net_session_ops http_session_ops;

/* The MTA-STS policy document (RFC 8461 §3.2) every domain of cfg
 * serves, CRLF line ends; caller frees. */
char *http_mtasts_policy(const struct config *cfg);
/* Its id for the _mta-sts TXT record (RFC 8461 §3.1): 32 hex digits of
 * the SHA-256 of the policy, so it changes whenever the policy does;
 * caller frees. */
char *http_mtasts_id(const struct config *cfg);

#endif
