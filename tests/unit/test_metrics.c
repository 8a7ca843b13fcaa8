/*
 * Unit tests for lib/metrics: the commit histogram puts a time on a
 * bound into that bound's bucket and one microsecond more into the next,
 * reads back cumulative with +Inf equal to the count, and sums exactly;
 * the IDLE gauge and the TLS counters by protocol count what they are
 * told, from several threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/metrics.h"

static void
test_metrics_commit_bucket_edges_and_cumulative_read(void **state)
{
	uint64_t c[METRICS_COMMIT_NBUCKETS + 1], sum;

	(void)state;
	metrics_commit_observe(0);	/* le 0.0005 */
	metrics_commit_observe(500);	/* le 0.0005: on the bound */
	metrics_commit_observe(501);	/* le 0.001 */
	metrics_commit_observe(1000);	/* le 0.001 */
	metrics_commit_observe(2500000);	/* le 2.5, the last bound */
	metrics_commit_observe(2500001);	/* +Inf only */
	metrics_commit_read(c, &sum);
	assert_int_equal(c[0], 2);
	assert_int_equal(c[1], 4);
	assert_int_equal(c[2], 4);
	assert_int_equal(c[METRICS_COMMIT_NBUCKETS - 2], 4);
	assert_int_equal(c[METRICS_COMMIT_NBUCKETS - 1], 5);
	assert_int_equal(c[METRICS_COMMIT_NBUCKETS], 6);
	assert_int_equal(sum, 0 + 500 + 501 + 1000 + 2500000 + 2500001);
	for (size_t i = 1; i <= METRICS_COMMIT_NBUCKETS; i++)
		assert_true(c[i] >= c[i - 1]);
}

static void *
worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++) {
		metrics_idle_add(1);
		metrics_tls_handshake(CONFIG_PROTO_IMAP, true);
		metrics_idle_add(-1);
	}
	metrics_idle_add(1);
	return NULL;
}

static void
test_metrics_idle_and_tls_counted_across_threads(void **state)
{
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(metrics_idle_current(), 4);
	assert_int_equal(metrics_tls_total(CONFIG_PROTO_IMAP, true), 40000);
	assert_int_equal(metrics_tls_total(CONFIG_PROTO_IMAP, false), 0);
	assert_int_equal(metrics_tls_total(CONFIG_PROTO_POP3, true), 0);
	metrics_tls_handshake(CONFIG_PROTO_POP3, false);
	assert_int_equal(metrics_tls_total(CONFIG_PROTO_POP3, false), 1);
	for (int i = 0; i < 4; i++)
		metrics_idle_add(-1);
	assert_int_equal(metrics_idle_current(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_metrics_commit_bucket_edges_and_cumulative_read),
		cmocka_unit_test(
		    test_metrics_idle_and_tls_counted_across_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
