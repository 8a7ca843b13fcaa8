/*
 * limits: connections counted in total and per client address across all
 * workers, so that one address cannot take every slot (DESIGN.md,
 * Security posture). A small chained hash table under one mutex: it is
 * touched twice per connection, never per byte.
 */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define LIMITS_BUCKETS 4096

struct ip_count {
	unsigned char addr[16];
	uint64_t count;
	struct ip_count *next;
};

struct conn_limits {
	pthread_mutex_t mu;
	uint64_t total;
	struct ip_count *buckets[LIMITS_BUCKETS];
};

/* IPv4 addresses and IPv4-mapped IPv6 addresses count as the same key.
 * An IPv6 client counts by its network (the first v6_prefix bits): one
 * host usually holds a whole /64, so counting single addresses would let
 * it take every slot. */
static void
addr_key(const struct sockaddr_storage *ss, unsigned v6_prefix,
    unsigned char key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &sin->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		memcpy(key, &sin6->sin6_addr, 16);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) || v6_prefix >= 128)
			return;
		for (unsigned bit = v6_prefix; bit < 128; bit++)
			key[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	}
}

static size_t
addr_hash(const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)(h % LIMITS_BUCKETS);
}

struct conn_limits *
conn_limits_new(void)
{
	struct conn_limits *lim = xcalloc(1, sizeof(*lim));

	pthread_mutex_init(&lim->mu, NULL);
	return lim;
}

void
conn_limits_free(struct conn_limits **limp)
{
	struct conn_limits *lim = *limp;

	if (lim == NULL)
		return;
	for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
		while (lim->buckets[i] != NULL) {
			struct ip_count *e = lim->buckets[i];

			lim->buckets[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&lim->mu);
	free(lim);
	*limp = NULL;
}

const char *
conn_limits_take(struct conn_limits *lim, const struct sockaddr_storage *addr,
    unsigned v6_prefix, uint64_t max_total, uint64_t max_per_ip)
{
	unsigned char key[16];
	struct ip_count *e;
	const char *refusal = NULL;
	size_t h;

	addr_key(addr, v6_prefix, key);
	h = addr_hash(key);
	pthread_mutex_lock(&lim->mu);
	for (e = lim->buckets[h]; e != NULL; e = e->next) {
		if (memcmp(e->addr, key, 16) == 0)
			break;
	}
	if (lim->total >= max_total) {
		refusal = "Too many connections, try again later";
	} else if (e != NULL && e->count >= max_per_ip) {
		refusal = "Too many connections from your address, try again "
		    "later";
	} else {
		if (e == NULL) {
			e = xcalloc(1, sizeof(*e));
			memcpy(e->addr, key, 16);
			e->next = lim->buckets[h];
			lim->buckets[h] = e;
		}
		e->count++;
		lim->total++;
	}
	pthread_mutex_unlock(&lim->mu);
	return refusal;
}

void
conn_limits_drop(struct conn_limits *lim, const struct sockaddr_storage *addr,
    unsigned v6_prefix)
{
	unsigned char key[16];
	struct ip_count **pe;
	size_t h;

	addr_key(addr, v6_prefix, key);
	h = addr_hash(key);
	pthread_mutex_lock(&lim->mu);
	for (pe = &lim->buckets[h]; *pe != NULL; pe = &(*pe)->next) {
		struct ip_count *e = *pe;

		if (memcmp(e->addr, key, 16) != 0)
			continue;
		if (e->count == 0 || lim->total == 0)
			panic("conn_limits_drop without a take");
		lim->total--;
		if (--e->count == 0) {
			*pe = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&lim->mu);
}

uint64_t
conn_limits_total(struct conn_limits *lim)
{
	uint64_t n;

	pthread_mutex_lock(&lim->mu);
	n = lim->total;
	pthread_mutex_unlock(&lim->mu);
	return n;
}
