/*
 * http: the HTTP/1.1 server of the http listeners (plain, or HTTPS with
 * implicit TLS): client autoconfiguration for every domain we serve
 * (Thunderbird autoconfig, Outlook Autodiscover, Apple .mobileconfig) and,
 * on listeners with metrics = yes, /metrics (Prometheus) and /healthz.
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

#endif
