/*
 * auth_lockout: failed logins, counted so that guessing is slow and an
 * attacker can lock out neither an account's owner nor a whole network
 * (issue 15 #12). Three counters per failure, each over lockout_window:
 *
 *   (name, network)  locks that pair after lockout_failures; each new lock
 *                    of the same pair lasts twice as long (up to 64x);
 *   network          locks the network after lockout_network_failures,
 *                    for any name (password spraying);
 *   name             locks the name everywhere once its failures come from
 *                    lockout_networks distinct networks and number at least
 *                    lockout_failures x lockout_networks.
 *
 * A network is the client's /lockout_ipv4_prefix (IPv4, default /24) or
 * /lockout_ipv6_prefix (IPv6, default /64): one host owns a /64, and a
 * /24 is what an attacker rents as easily as one address. A name is
 * counted whether or not an account has it, so that the answers to an
 * unknown name are those to a wrong password (the caller checks the
 * name-wide lock of a known account in the store, where `postern user
 * unlock` lifts it).
 *
 * The table is bounded: LOCKOUT_SLOTS entries found by a keyed hash (the
 * key lives only in memory, so nobody can aim names at one neighbourhood)
 * and LOCKOUT_PROBE neighbours. A new entry takes a free neighbour, else
 * the unlocked one whose last failure is oldest. A locked entry is never
 * taken, so no flood of failures can lift a lock; when every neighbour is
 * locked the failure is not counted, answered with the longest delay, and
 * logged (auth.lockout_table_full). One mutex; every call is short.
 */
#include "auth/auth_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/log.h"
#include "lib/util.h"

#define LOCKOUT_SLOTS 8192
#define LOCKOUT_PROBE 64
#define LOCKOUT_TAG_LEN 16
#define LOCKOUT_NETS_MAX 16	/* distinct networks remembered per name */
#define LOCK_GROWTH_MAX 6	/* a repeated lock lasts at most 2^6 times */
#define MAX_DELAY_MS 8000	/* the longest a failure waits */
#define NAME_MAX_LEN 255

enum lockout_kind {
	LOCKOUT_PAIR = 'p',
	LOCKOUT_NET = 'n',
	LOCKOUT_NAME = 'a',
};

struct lockout_entry {
	unsigned char tag[LOCKOUT_TAG_LEN];
	bool is_used;
	unsigned failures;	/* in the window that began at window_start */
	unsigned locks;		/* how often this pair was locked */
	unsigned nnets;
	time_t window_start;
	time_t last_failure;
	time_t locked_until;
	uint32_t nets[LOCKOUT_NETS_MAX];	/* a name's failing networks */
};

struct auth_lockout {
	pthread_mutex_t mu;
	unsigned char key[AUTH_SHA256_LEN];
	struct lockout_entry slots[LOCKOUT_SLOTS];
};

/* What one login is counted under. */
struct lockout_keys {
	unsigned char pair[LOCKOUT_TAG_LEN];
	unsigned char net[LOCKOUT_TAG_LEN];
	unsigned char name[LOCKOUT_TAG_LEN];
	uint32_t net_id;
};

struct auth_lockout *
auth_lockout_new(void)
{
	struct auth_lockout *lo = xcalloc(1, sizeof(*lo));

	pthread_mutex_init(&lo->mu, NULL);
	auth_random(lo->key, sizeof(lo->key));
	return lo;
}

void
auth_lockout_free(struct auth_lockout **lop)
{
	struct auth_lockout *lo = *lop;

	if (lo == NULL)
		return;
	pthread_mutex_destroy(&lo->mu);
	secret_wipe(lo->key, sizeof(lo->key));
	free(lo);
	*lop = NULL;
}

static void
mask_bits(unsigned char *addr, size_t len, unsigned prefix)
{
	for (size_t i = 0; i < len; i++) {
		unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;

		if (bits < 8)
			addr[i] &= (unsigned char)(0xff00u >> bits);
	}
}

size_t
auth_lockout_network(const char *peer, unsigned v4_prefix,
    unsigned v6_prefix, unsigned char out[AUTH_NETWORK_LEN])
{
	unsigned char a[16];

	if (inet_pton(AF_INET, peer, a) == 1) {
		out[0] = 4;
		memcpy(out + 1, a, 4);
		mask_bits(out + 1, 4, v4_prefix);
		return 5;
	}
	if (inet_pton(AF_INET6, peer, a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
		};

		/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d
		 * (RFC 4291 §2.5.5.2): still an IPv4 network. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			out[0] = 4;
			memcpy(out + 1, a + 12, 4);
			mask_bits(out + 1, 4, v4_prefix);
			return 5;
		}
		out[0] = 6;
		memcpy(out + 1, a, 16);
		mask_bits(out + 1, 16, v6_prefix);
		return 17;
	}
	/* Not a numeric address (tests, a local socket): the text itself,
	 * cut to what fits. */
	out[0] = 0;
	memset(out + 1, 0, AUTH_NETWORK_LEN - 1);
	memcpy(out + 1, peer, strnlen(peer, AUTH_NETWORK_LEN - 1));
	return AUTH_NETWORK_LEN;
}

static void
tag_make(const struct auth_lockout *lo, enum lockout_kind kind,
    const char *name, const unsigned char *net, size_t netlen,
    unsigned char tag[LOCKOUT_TAG_LEN])
{
	unsigned char msg[1 + NAME_MAX_LEN + 1 + AUTH_NETWORK_LEN];
	unsigned char h[AUTH_SHA256_LEN];
	size_t n = 0;

	msg[n++] = (unsigned char)kind;
	if (name != NULL) {
		size_t len = strnlen(name, NAME_MAX_LEN);

		/* Names are counted case-blind, as accounts are found. */
		for (size_t i = 0; i < len; i++)
			msg[n++] = (unsigned char)tolower((unsigned char)name[i]);
		msg[n++] = '\0';
	}
	if (net != NULL) {
		memcpy(msg + n, net, netlen);
		n += netlen;
	}
	auth_hmac_sha256(lo->key, sizeof(lo->key), msg, n, h);
	memcpy(tag, h, LOCKOUT_TAG_LEN);
}

static void
keys_make(const struct auth_lockout *lo, const struct auth_settings *s,
    const char *name, const char *peer, struct lockout_keys *k)
{
	unsigned char net[AUTH_NETWORK_LEN];
	size_t netlen = auth_lockout_network(peer, s->lockout_ipv4_prefix,
	    s->lockout_ipv6_prefix, net);

	tag_make(lo, LOCKOUT_PAIR, name, net, netlen, k->pair);
	tag_make(lo, LOCKOUT_NET, NULL, net, netlen, k->net);
	tag_make(lo, LOCKOUT_NAME, name, NULL, 0, k->name);
	memcpy(&k->net_id, k->net, sizeof(k->net_id));
}

/* The entry of tag, or NULL; with is_create, a new one if none (NULL when
 * every neighbour is locked). Under lo->mu. */
static struct lockout_entry *
slot_find(struct auth_lockout *lo, const unsigned char *tag, bool is_create,
    time_t now)
{
	size_t h = ((size_t)tag[0] | (size_t)tag[1] << 8 |
	    (size_t)tag[2] << 16) % LOCKOUT_SLOTS;
	struct lockout_entry *victim = NULL;

	for (size_t i = 0; i < LOCKOUT_PROBE; i++) {
		struct lockout_entry *e = &lo->slots[(h + i) % LOCKOUT_SLOTS];

		if (e->is_used && memcmp(e->tag, tag, LOCKOUT_TAG_LEN) == 0)
			return e;
		if (!is_create || (victim != NULL && !victim->is_used))
			continue;
		if (!e->is_used) {
			victim = e;
			continue;
		}
		/* Never a locked entry: taking it would lift its lock. */
		if (e->locked_until > now)
			continue;
		if (victim == NULL || e->last_failure < victim->last_failure)
			victim = e;
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->tag, tag, LOCKOUT_TAG_LEN);
	victim->is_used = true;
	victim->window_start = now;
	return victim;
}

static bool
is_entry_locked(struct auth_lockout *lo, const unsigned char *tag,
    time_t now)
{
	struct lockout_entry *e = slot_find(lo, tag, false, now);

	return e != NULL && e->locked_until > now;
}

bool
is_auth_lockout_locked(struct auth_lockout *lo, const struct auth_settings *s,
    const char *name, const char *peer, bool is_name_checked, time_t now)
{
	struct lockout_keys k;
	bool locked;

	keys_make(lo, s, name, peer, &k);
	pthread_mutex_lock(&lo->mu);
	locked = is_entry_locked(lo, k.net, now) ||
	    is_entry_locked(lo, k.pair, now) ||
	    (is_name_checked && is_entry_locked(lo, k.name, now));
	pthread_mutex_unlock(&lo->mu);
	return locked;
}

/* Counts one failure in e; returns the failures of the window. */
static unsigned
entry_fail(struct lockout_entry *e, const struct auth_settings *s, time_t now)
{
	if (now - e->window_start >= (time_t)s->lockout_window) {
		e->window_start = now;
		e->failures = 0;
		e->nnets = 0;
	}
	e->last_failure = now;
	return ++e->failures;
}

/* Adds net to the networks a name failed from; returns how many. */
static unsigned
entry_add_net(struct lockout_entry *e, uint32_t net)
{
	for (unsigned i = 0; i < e->nnets; i++) {
		if (e->nets[i] == net)
			return e->nnets;
	}
	if (e->nnets < LOCKOUT_NETS_MAX)
		e->nets[e->nnets++] = net;
	return e->nnets;
}

unsigned
auth_lockout_failed(struct auth_lockout *lo, const struct auth_settings *s,
    const char *name, const char *peer, time_t now, time_t *name_locked_out)
{
	struct lockout_keys k;
	struct lockout_entry *pair, *net, *nm;
	unsigned n = 0, networks = s->lockout_networks;
	bool is_full = false;

	*name_locked_out = 0;
	if (networks > LOCKOUT_NETS_MAX)
		networks = LOCKOUT_NETS_MAX;
	keys_make(lo, s, name, peer, &k);
	pthread_mutex_lock(&lo->mu);
	net = slot_find(lo, k.net, true, now);
	if (net != NULL) {
		unsigned m = entry_fail(net, s, now);

		n = m;
		if (m >= s->lockout_network_failures &&
		    net->locked_until <= now)
			net->locked_until = now + s->lockout_duration;
	} else {
		is_full = true;
	}
	pair = slot_find(lo, k.pair, true, now);
	if (pair != NULL) {
		unsigned m = entry_fail(pair, s, now);

		n = m > n ? m : n;
		if (m >= s->lockout_failures && pair->locked_until <= now) {
			unsigned growth = pair->locks < LOCK_GROWTH_MAX ?
			    pair->locks : LOCK_GROWTH_MAX;

			pair->locked_until = now +
			    ((time_t)s->lockout_duration << growth);
			pair->locks++;
			/* A new window after the lock: the next lock needs
			 * as many failures again. */
			pair->failures = 0;
			pair->window_start = now;
		}
	} else {
		is_full = true;
	}
	nm = slot_find(lo, k.name, true, now);
	if (nm != NULL) {
		unsigned m = entry_fail(nm, s, now);
		unsigned nets = entry_add_net(nm, k.net_id);

		if (nets >= networks && m >= s->lockout_failures * networks &&
		    nm->locked_until <= now) {
			nm->locked_until = now + s->lockout_duration;
			*name_locked_out = nm->locked_until;
			nm->failures = 0;
			nm->nnets = 0;
			nm->window_start = now;
		}
	} else {
		is_full = true;
	}
	pthread_mutex_unlock(&lo->mu);
	if (is_full) {
		log_warn(NULL, "auth.lockout_table_full peer=%s "
		    "result=\"failure not counted, answered after %u ms\"",
		    peer, MAX_DELAY_MS);
		return MAX_DELAY_MS;
	}
	return auth_failure_delay_ms(n);
}

void
auth_lockout_succeeded(struct auth_lockout *lo, const struct auth_settings *s,
    const char *name, const char *peer, time_t now)
{
	struct lockout_keys k;
	struct lockout_entry *e;

	keys_make(lo, s, name, peer, &k);
	pthread_mutex_lock(&lo->mu);
	/* The owner proved who it is from here: its pair starts over, and
	 * the name's tally too (its lock, if any, stays). */
	e = slot_find(lo, k.pair, false, now);
	if (e != NULL && e->locked_until <= now)
		memset(e, 0, sizeof(*e));
	e = slot_find(lo, k.name, false, now);
	if (e != NULL) {
		e->failures = 0;
		e->nnets = 0;
	}
	pthread_mutex_unlock(&lo->mu);
}

/* Growing delay after the n-th failure: 250 ms doubling, at most 8 s. */
unsigned
auth_failure_delay_ms(unsigned n)
{
	unsigned ms = 250;

	while (n-- > 1 && ms < MAX_DELAY_MS)
		ms *= 2;
	return ms < MAX_DELAY_MS ? ms : MAX_DELAY_MS;
}
