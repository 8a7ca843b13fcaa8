/*
 * metrics: process-wide counters for /metrics (src/http). Every layer
 * may count here (lib is below all of them); each counter is one atomic
 * word, so any thread adds without a lock. Readers see each counter on its
 * own (no snapshot across counters), which is what Prometheus expects of
 * a scrape.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"

/* Counters and gauges without labels beyond the ones named here. */
enum metric {
	METRIC_LOGINS_OK,
	METRIC_LOGINS_FAILED,
	METRIC_LOGINS_LOCKED,
	METRIC_LOGINS_DISABLED,	/* the account or its protocol is off */
	METRIC_LOGINS_TEMPFAIL,
	METRIC_MESSAGES_RECEIVED,	/* SMTP 250 after DATA/BDAT */
	METRIC_DELIVERIES_LOCAL,	/* copies put in a local mailbox */
	METRIC_RECIPIENTS_QUEUED,	/* outside recipients queued */
	METRIC_MESSAGES_BOUNCED,	/* bounce reports made (RFC 3464) */
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

/* A client's TLS handshake on a listener of proto ended (implicit TLS
 * or STARTTLS), well or not. */
void metrics_tls_handshake(enum config_proto proto, bool is_ok);
uint64_t metrics_tls_total(enum config_proto proto, bool is_ok);

/* IMAP sessions in IDLE now: +1 when one starts, -1 when it ends (DONE,
 * or the connection closes while idling). */
void metrics_idle_add(int delta);
uint64_t metrics_idle_current(void);

/* The store's group commits: how long each took (apply, sync of the
 * message files, COMMIT), in a histogram of METRICS_COMMIT_NBUCKETS
 * upper bounds in seconds, metrics_commit_bounds[], plus +Inf. */
#define METRICS_COMMIT_NBUCKETS 12
extern const double metrics_commit_bounds[METRICS_COMMIT_NBUCKETS];
void metrics_commit_observe(uint64_t usec);
/* Cumulative counts: out[i] commits took at most bounds[i]; out[NBUCKETS]
 * is every commit (+Inf, the count); *sum_usec_out their total time. */
void metrics_commit_read(uint64_t out[METRICS_COMMIT_NBUCKETS + 1],
    uint64_t *sum_usec_out);

/* Unix time the process started counting (first call of any function
 * here, or metrics_start()). */
void metrics_start(void);
int64_t metrics_start_time(void);

#endif
