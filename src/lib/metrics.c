/*
 * metrics: the counters of lib/metrics.h, plain C11 atomics with relaxed
 * ordering (each counter stands alone; nothing is published through them).
 */
#include "lib/metrics.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic uint64_t counters[METRIC_COUNT];
static _Atomic uint64_t conn_total[METRICS_NPROTO];
static _Atomic int64_t conn_current[METRICS_NPROTO];
static _Atomic int64_t start_time;
static _Atomic uint64_t tls_ok[METRICS_NPROTO];
static _Atomic uint64_t tls_failed[METRICS_NPROTO];
static _Atomic int64_t idle_current;
/* Per bucket, not cumulative: commit_buckets[i] counts the commits above
 * bounds[i - 1] and at most bounds[i]; the last one those above every
 * bound. The count is their sum, read at scrape time, so that the +Inf
 * bucket and _count always agree. */
static _Atomic uint64_t commit_buckets[METRICS_COMMIT_NBUCKETS + 1];
static _Atomic uint64_t commit_sum_usec;

const double metrics_commit_bounds[METRICS_COMMIT_NBUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5,
};

void
metrics_add(enum metric m, uint64_t n)
{
	if ((unsigned)m < METRIC_COUNT)
		atomic_fetch_add_explicit(&counters[m], n,
		    memory_order_relaxed);
}

uint64_t
metrics_get(enum metric m)
{
	if ((unsigned)m >= METRIC_COUNT)
		return 0;
	return atomic_load_explicit(&counters[m], memory_order_relaxed);
}

void
metrics_conn_open(enum config_proto proto)
{
	if ((unsigned)proto >= METRICS_NPROTO)
		return;
	atomic_fetch_add_explicit(&conn_total[proto], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&conn_current[proto], 1,
	    memory_order_relaxed);
}

void
metrics_conn_close(enum config_proto proto)
{
	if ((unsigned)proto >= METRICS_NPROTO)
		return;
	atomic_fetch_sub_explicit(&conn_current[proto], 1,
	    memory_order_relaxed);
}

uint64_t
metrics_conn_total(enum config_proto proto)
{
	if ((unsigned)proto >= METRICS_NPROTO)
		return 0;
	return atomic_load_explicit(&conn_total[proto], memory_order_relaxed);
}

uint64_t
metrics_conn_current(enum config_proto proto)
{
	int64_t n;

	if ((unsigned)proto >= METRICS_NPROTO)
		return 0;
	n = atomic_load_explicit(&conn_current[proto], memory_order_relaxed);
	return n < 0 ? 0 : (uint64_t)n;
}

void
metrics_start(void)
{
	int64_t zero = 0;

	atomic_compare_exchange_strong(&start_time, &zero,
	    (int64_t)time(NULL));
}

int64_t
metrics_start_time(void)
{
	metrics_start();
	return atomic_load(&start_time);
}

void
metrics_tls_handshake(enum config_proto proto, bool is_ok)
{
	if ((unsigned)proto >= METRICS_NPROTO)
		return;
	atomic_fetch_add_explicit(is_ok ? &tls_ok[proto] : &tls_failed[proto],
	    1, memory_order_relaxed);
}

uint64_t
metrics_tls_total(enum config_proto proto, bool is_ok)
{
	if ((unsigned)proto >= METRICS_NPROTO)
		return 0;
	return atomic_load_explicit(is_ok ? &tls_ok[proto] :
	    &tls_failed[proto], memory_order_relaxed);
}

void
metrics_idle_add(int delta)
{
	atomic_fetch_add_explicit(&idle_current, delta, memory_order_relaxed);
}

uint64_t
metrics_idle_current(void)
{
	int64_t n = atomic_load_explicit(&idle_current, memory_order_relaxed);

	return n < 0 ? 0 : (uint64_t)n;
}

void
metrics_commit_observe(uint64_t usec)
{
	size_t i = 0;

	/* Compared in whole microseconds, as the bounds are written. */
	while (i < METRICS_COMMIT_NBUCKETS &&
	    (double)usec > metrics_commit_bounds[i] * 1e6 + 0.5)
		i++;
	atomic_fetch_add_explicit(&commit_buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&commit_sum_usec, usec,
	    memory_order_relaxed);
}

void
metrics_commit_read(uint64_t out[METRICS_COMMIT_NBUCKETS + 1],
    uint64_t *sum_usec_out)
{
	uint64_t total = 0;

	for (size_t i = 0; i <= METRICS_COMMIT_NBUCKETS; i++) {
		total += atomic_load_explicit(&commit_buckets[i],
		    memory_order_relaxed);
		out[i] = total;
	}
	*sum_usec_out = atomic_load_explicit(&commit_sum_usec,
	    memory_order_relaxed);
}
