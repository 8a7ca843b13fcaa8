/*
 * metrics: process-wide counters for /metrics (src/http). Every layer
 * may count here (lib is below all of them); each counter is one atomic
 * word, so any thread adds without a lock. Readers see each counter on its
 * own (no snapshot across counters), which is what Prometheus expects of
 * a scrape.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdint.h>

#include "lib/config.h"

/* Counters and gauges without labels beyond the ones named here. */
enum metric {
	METRIC_TLS_HANDSHAKES_OK,
	METRIC_TLS_HANDSHAKES_FAILED,
	METRIC_LOGINS_OK,
	METRIC_LOGINS_FAILED,
	METRIC_LOGINS_LOCKED,
	METRIC_LOGINS_DISABLED,	/* the account or its protocol is off */
	METRIC_LOGINS_TEMPFAIL,
	METRIC_MESSAGES_RECEIVED,	/* SMTP 250 after DATA/BDAT */
	METRIC_RECIPIENTS_DELIVERED,	/* queue: a remote host took it */
	METRIC_RECIPIENTS_DEFERRED,
	METRIC_RECIPIENTS_FAILED,
	METRIC_HTTP_REQUESTS,
	METRIC_COUNT,
};

/* Number of protocols (enum config_proto) counted per protocol. */
#define METRICS_NPROTO (CONFIG_PROTO_HTTP + 1)

void metrics_add(enum metric m, uint64_t n);
uint64_t metrics_get(enum metric m);

/* A connection of proto was accepted (total and current) or ended. */
void metrics_conn_open(enum config_proto proto);
void metrics_conn_close(enum config_proto proto);
uint64_t metrics_conn_total(enum config_proto proto);
uint64_t metrics_conn_current(enum config_proto proto);

/* Unix time the process started counting (first call of any function
 * here, or metrics_start()). */
void metrics_start(void);
int64_t metrics_start_time(void);

#endif
