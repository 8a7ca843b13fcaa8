/*
 * Unit tests for net/limits.c: connections counted per client address, an
 * IPv6 client per network (issue 15, finding 4: one /64 must not take
 * every slot).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/net_int.h"

static struct sockaddr_storage
v6(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	return ss;
}

static struct sockaddr_storage
v4(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	return ss;
}

static void
test_limits_ipv6_addresses_of_one_64_share_the_per_ip_limit(void **state)
{
	struct conn_limits *lim = conn_limits_new();
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage b = v6("2001:db8:1:2:ffff:1234:5678:9abc");
	struct sockaddr_storage other = v6("2001:db8:1:3::1");

	(void)state;
	assert_null(conn_limits_take(lim, &a, 64, 100, 2));
	assert_null(conn_limits_take(lim, &b, 64, 100, 2));
	/* A third address of the same /64 is over the limit... */
	assert_non_null(conn_limits_take(lim, &b, 64, 100, 2));
	/* ...a neighbouring /64 is not. */
	assert_null(conn_limits_take(lim, &other, 64, 100, 2));
	assert_int_equal(conn_limits_total(lim), 3);
	conn_limits_drop(lim, &a, 64);
	assert_null(conn_limits_take(lim, &b, 64, 100, 2));
	conn_limits_drop(lim, &b, 64);
	conn_limits_drop(lim, &b, 64);
	conn_limits_drop(lim, &other, 64);
	assert_int_equal(conn_limits_total(lim), 0);
	conn_limits_free(&lim);
}

static void
test_limits_prefix_128_counts_single_addresses(void **state)
{
	struct conn_limits *lim = conn_limits_new();
	struct sockaddr_storage a = v6("2001:db8::1");
	struct sockaddr_storage b = v6("2001:db8::2");

	(void)state;
	assert_null(conn_limits_take(lim, &a, 128, 100, 1));
	assert_null(conn_limits_take(lim, &b, 128, 100, 1));
	assert_non_null(conn_limits_take(lim, &a, 128, 100, 1));
	conn_limits_drop(lim, &a, 128);
	conn_limits_drop(lim, &b, 128);
	conn_limits_free(&lim);
}

static void
test_limits_ipv4_and_mapped_ipv6_are_one_address(void **state)
{
	struct conn_limits *lim = conn_limits_new();
	struct sockaddr_storage a = v4("192.0.2.7");
	struct sockaddr_storage mapped = v6("::ffff:192.0.2.7");
	struct sockaddr_storage next = v4("192.0.2.8");

	(void)state;
	assert_null(conn_limits_take(lim, &a, 64, 100, 1));
	/* The /64 rule must not lump every IPv4 client together. */
	assert_non_null(conn_limits_take(lim, &mapped, 64, 100, 1));
	assert_null(conn_limits_take(lim, &next, 64, 100, 1));
	conn_limits_drop(lim, &a, 64);
	conn_limits_drop(lim, &next, 64);
	assert_int_equal(conn_limits_total(lim), 0);
	conn_limits_free(&lim);
}

static void
test_limits_total_limit_refuses_everyone(void **state)
{
	struct conn_limits *lim = conn_limits_new();
	struct sockaddr_storage a = v4("192.0.2.1");
	struct sockaddr_storage b = v6("2001:db8::1");

	(void)state;
	assert_null(conn_limits_take(lim, &a, 64, 1, 10));
	assert_non_null(conn_limits_take(lim, &b, 64, 1, 10));
	conn_limits_drop(lim, &a, 64);
	conn_limits_free(&lim);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_limits_ipv6_addresses_of_one_64_share_the_per_ip_limit),
		cmocka_unit_test(test_limits_prefix_128_counts_single_addresses),
		cmocka_unit_test(test_limits_ipv4_and_mapped_ipv6_are_one_address),
		cmocka_unit_test(test_limits_total_limit_refuses_everyone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
