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
