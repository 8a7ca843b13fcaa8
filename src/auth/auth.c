/*
 * auth: logins. The flow of one check, from any event-loop thread:
 *   lockout of the client address -> account lookup (store read) ->
 *   cache of recent successes, else a password check on the pool ->
 *   account state and protocol switch -> result, delayed after failures.
 * The lockout table and the cache are shared by every worker under one
 * mutex; both are small and touched once per login.
 */
#include "auth/auth_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/workpool.h"

#define LOCKOUT_SLOTS 1024	/* addresses and accounts tracked */
#define CACHE_SLOTS 1024
#define MAX_DELAY_MS 8000	/* the longest a failure waits */

/* Failures of one key (a client address or an account) in the window. */
struct lockout_entry {
	char key[128];
	time_t window_start;
	unsigned failures;
	time_t locked_until;
};

/* A successful check, remembered by an HMAC of user and password under a
 * key that lives only in memory: the cache never holds a password, and an
 * entry stops matching as soon as the account's hash changes. */
struct cache_entry {
	unsigned char tag[AUTH_SHA256_LEN];
	unsigned char hash_tag[AUTH_SHA256_LEN];
	time_t expires;
	bool is_used;
};

struct auth {
	struct store *store;
	struct auth_settings settings;
	char *oauth_issuer, *oauth_audience;
	void *jwks;			/* json_t, see auth_jwt.c */
	struct workpool *pool;
	pthread_mutex_t mu;
	struct lockout_entry lockout[LOCKOUT_SLOTS];
	struct cache_entry cache[CACHE_SLOTS];
	unsigned char cache_key[AUTH_SHA256_LEN];
};

/* One login in flight. */
struct login {
	struct auth *auth;
	char *user;
	char *password;
	enum auth_proto proto;
	char peer[64];
	char sid[32];
	struct event_base *base;
	auth_done_cb cb;
	void *arg;
	struct store_account account;
	bool has_account;
	unsigned char tag[AUTH_SHA256_LEN];
	enum auth_result result;
	unsigned delay_ms;
	struct auth_identity id;
};

static const char *const proto_names[] = {
	[AUTH_PROTO_IMAP] = "imap",
	[AUTH_PROTO_POP3] = "pop3",
	[AUTH_PROTO_SUBMISSION] = "submission",
};

const char *
auth_result_name(enum auth_result r)
{
	static const char *const names[] = {
		[AUTH_OK] = "ok",
		[AUTH_FAILED] = "failed",
		[AUTH_LOCKED] = "locked",
		[AUTH_DISABLED] = "account_disabled",
		[AUTH_PROTO_DISABLED] = "protocol_disabled",
		[AUTH_TEMP] = "temporary_failure",
	};

	return names[r];
}

void
auth_settings_default(struct auth_settings *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < ARRAY_LEN(s->proto_default); i++)
		s->proto_default[i] = true;
	s->lockout_failures = 10;
	s->lockout_window = 15 * 60;
	s->lockout_duration = 15 * 60;
	s->cache_ttl = 5 * 60;
	s->hash_threads = 2;
}

struct auth *
auth_new(struct store *st, const struct auth_settings *s, char *err,
    size_t errlen)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->store = st;
	a->settings = *s;
	if (s->oauth_jwks_file != NULL) {
		a->jwks = auth_jwks_load(s->oauth_jwks_file, err, errlen);
		if (a->jwks == NULL) {
			free(a);
			return NULL;
		}
		a->oauth_issuer = s->oauth_issuer ? xstrdup(s->oauth_issuer) :
		    NULL;
		a->oauth_audience = s->oauth_audience ?
		    xstrdup(s->oauth_audience) : NULL;
	}
	a->settings.oauth_issuer = a->oauth_issuer;
	a->settings.oauth_audience = a->oauth_audience;
	a->settings.oauth_jwks_file = NULL;
	auth_random(a->cache_key, sizeof(a->cache_key));
	pthread_mutex_init(&a->mu, NULL);
	a->pool = workpool_new(s->hash_threads);
	return a;
}

void
auth_free(struct auth **ap)
{
	struct auth *a = *ap;

	if (a == NULL)
		return;
	workpool_free(&a->pool);
	auth_jwks_free(a->jwks);
	free(a->oauth_issuer);
	free(a->oauth_audience);
	pthread_mutex_destroy(&a->mu);
	secret_wipe(a->cache_key, sizeof(a->cache_key));
	free(a);
	*ap = NULL;
}

const struct auth_settings *
auth_settings_get(const struct auth *a)
{
	return &a->settings;
}

struct store *
auth_store(const struct auth *a)
{
	return a->store;
}

const void *
auth_jwks(const struct auth *a)
{
	return a->jwks;
}

/* ---- Lockout ---------------------------------------------------------- */

static struct lockout_entry *
lockout_find(struct auth *a, const char *key, bool is_create, time_t now)
{
	struct lockout_entry *oldest = NULL;

	for (size_t i = 0; i < LOCKOUT_SLOTS; i++) {
		struct lockout_entry *e = &a->lockout[i];

		if (e->key[0] != '\0' && strcmp(e->key, key) == 0)
			return e;
		if (!is_create)
			continue;
		/* Reuse a free slot, else the one whose story is oldest
		 * and that is not locked now. */
		if (e->key[0] == '\0' && (oldest == NULL ||
		    oldest->key[0] != '\0'))
			oldest = e;
		else if (oldest == NULL || (oldest->key[0] != '\0' &&
		    e->locked_until <= now &&
		    e->window_start < oldest->window_start))
			oldest = e;
	}
	if (oldest == NULL)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->window_start = now;
	return oldest;
}

bool
is_auth_locked(struct auth *a, const char *key, time_t now)
{
	struct lockout_entry *e;
	bool locked;

	pthread_mutex_lock(&a->mu);
	e = lockout_find(a, key, false, now);
	locked = e != NULL && e->locked_until > now;
	pthread_mutex_unlock(&a->mu);
	return locked;
}

/* Counts a failure for key. Returns how many failures the window holds
 * now; sets *locked_out when this one starts a lock. */
unsigned
auth_failure_count(struct auth *a, const char *key, time_t now,
    bool *locked_out)
{
	const struct auth_settings *s = &a->settings;
	struct lockout_entry *e;
	unsigned n;

	*locked_out = false;
	pthread_mutex_lock(&a->mu);
	e = lockout_find(a, key, true, now);
	if (now - e->window_start >= (time_t)s->lockout_window) {
		e->window_start = now;
		e->failures = 0;
	}
	n = ++e->failures;
	if (n >= s->lockout_failures && e->locked_until <= now) {
		e->locked_until = now + s->lockout_duration;
		*locked_out = true;
	}
	pthread_mutex_unlock(&a->mu);
	return n;
}

void
auth_failure_clear(struct auth *a, const char *key)
{
	struct lockout_entry *e;

	pthread_mutex_lock(&a->mu);
	e = lockout_find(a, key, false, 0);
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&a->mu);
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

/* ---- Cache ------------------------------------------------------------ */

static void
cache_tags(struct auth *a, const char *user, const char *password,
    const char *hash, unsigned char tag[AUTH_SHA256_LEN],
    unsigned char hash_tag[AUTH_SHA256_LEN])
{
	size_t ulen = strlen(user), plen = strlen(password);
	char *msg = xmalloc(ulen + plen + 2);

	memcpy(msg, user, ulen + 1);
	memcpy(msg + ulen + 1, password, plen + 1);
	auth_hmac_sha256(a->cache_key, sizeof(a->cache_key), msg,
	    ulen + plen + 2, tag);
	secret_wipe(msg, ulen + plen + 2);
	free(msg);
	auth_hmac_sha256(a->cache_key, sizeof(a->cache_key), hash ? hash : "",
	    hash ? strlen(hash) : 0, hash_tag);
}

static bool
is_cached(struct auth *a, const unsigned char *tag,
    const unsigned char *hash_tag, time_t now)
{
	struct cache_entry *e = &a->cache[(tag[0] | tag[1] << 8) % CACHE_SLOTS];
	bool hit;

	pthread_mutex_lock(&a->mu);
	hit = e->is_used && e->expires > now &&
	    memcmp(e->tag, tag, AUTH_SHA256_LEN) == 0 &&
	    memcmp(e->hash_tag, hash_tag, AUTH_SHA256_LEN) == 0;
	pthread_mutex_unlock(&a->mu);
	return hit;
}

static void
cache_put(struct auth *a, const unsigned char *tag,
    const unsigned char *hash_tag, time_t now)
{
	struct cache_entry *e = &a->cache[(tag[0] | tag[1] << 8) % CACHE_SLOTS];

	pthread_mutex_lock(&a->mu);
	memcpy(e->tag, tag, AUTH_SHA256_LEN);
	memcpy(e->hash_tag, hash_tag, AUTH_SHA256_LEN);
	e->expires = now + a->settings.cache_ttl;
	e->is_used = true;
	pthread_mutex_unlock(&a->mu);
}

/* ---- Account policy --------------------------------------------------- */

bool
is_auth_proto_enabled(const struct auth *a, const struct store_account *acc,
    enum auth_proto proto)
{
	enum store_switch sw = proto == AUTH_PROTO_IMAP ? acc->imap :
	    proto == AUTH_PROTO_POP3 ? acc->pop3 : acc->submission;

	if (sw == STORE_SWITCH_DEFAULT)
		return a->settings.proto_default[proto];
	return sw == STORE_SWITCH_ON;
}

/* What an account that proved who it is may do. */
enum auth_result
auth_account_policy(const struct auth *a, const struct store_account *acc,
    enum auth_proto proto, time_t now)
{
	if (acc->locked_until > now)
		return AUTH_LOCKED;
	if (!acc->is_enabled)
		return AUTH_DISABLED;
	if (!is_auth_proto_enabled(a, acc, proto))
		return AUTH_PROTO_DISABLED;
	return AUTH_OK;
}

/* ---- Login ------------------------------------------------------------ */

static void
login_free(struct login *l)
{
	if (l->password != NULL) {
		secret_wipe(l->password, strlen(l->password));
		free(l->password);
	}
	free(l->user);
	if (l->has_account)
		store_account_deinit(&l->account);
	free(l);
}

static void
on_login_reply(evutil_socket_t fd, short what, void *arg)
{
	struct login *l = arg;

	(void)fd;
	(void)what;
	l->cb(l->arg, l->result, l->result == AUTH_OK ? &l->id : NULL);
	login_free(l);
}

/* Writes the lock into the account so that every process (and `postern
 * user unlock`) sees it. Runs on the pool: the store write may wait. */
static void
account_lock_persist(struct auth *a, int64_t account, time_t until)
{
	struct store_account acc;
	enum store_err err;

	if (store_account_get_by_id(a->store, account, &acc, &err) < 0)
		return;
	acc.locked_until = until;
	store_account_update(a->store, &acc, &err);
	store_account_deinit(&acc);
}

/* Pool thread: the slow part. */
static void
login_work(void *arg)
{
	struct login *l = arg;
	struct auth *a = l->auth;
	time_t now = time(NULL);
	bool is_ok;

	if (!l->has_account) {
		/* Hash anyway, so that unknown users cost the same time. */
		char *h = auth_password_hash(l->password);

		free(h);
		is_ok = false;
	} else {
		is_ok = is_auth_password_ok(l->password,
		    l->account.password_hash);
		if (!is_ok)
			is_ok = auth_app_password_check(a, &l->account,
			    l->password, l->proto, l->peer, l->id.app_password,
			    sizeof(l->id.app_password));
	}
	if (is_ok) {
		unsigned char hash_tag[AUTH_SHA256_LEN];

		cache_tags(a, l->user, l->password,
		    l->account.password_hash, l->tag, hash_tag);
		if (l->id.app_password[0] == '\0')
			cache_put(a, l->tag, hash_tag, now);
		l->result = auth_account_policy(a, &l->account, l->proto,
		    now);
		if (l->result != AUTH_LOCKED)
			auth_failure_clear(a, l->account.address);
		return;
	}
	l->result = AUTH_FAILED;
	auth_login_failed(a, l->has_account ? &l->account : NULL, l->peer,
	    now, &l->delay_ms);
}

void
auth_login_failed(struct auth *a, const struct store_account *acc,
    const char *peer, time_t now, unsigned *delay_ms_out)
{
	bool is_locked;
	unsigned n = auth_failure_count(a, peer, now, &is_locked);

	*delay_ms_out = auth_failure_delay_ms(n);
	if (acc == NULL)
		return;
	n = auth_failure_count(a, acc->address, now, &is_locked);
	if (is_locked) {
		log_warn(NULL, "auth.account_locked account=%s seconds=%u",
		    acc->address, a->settings.lockout_duration);
		account_lock_persist(a, acc->id,
		    now + a->settings.lockout_duration);
	}
}

static void
login_finish(struct login *l)
{
	struct timeval tv = { l->delay_ms / 1000,
	    (suseconds_t)(l->delay_ms % 1000) * 1000 };

	if (l->result == AUTH_OK) {
		l->id.account = l->account.id;
		snprintf(l->id.address, sizeof(l->id.address), "%s",
		    l->account.address);
	}
	log_info(l->sid, "auth.login user=<%s> proto=%s peer=%s result=%s%s%s",
	    l->user, proto_names[l->proto], l->peer,
	    auth_result_name(l->result),
	    l->id.app_password[0] ? " app_password=" : "",
	    l->id.app_password);
	if (event_base_once(l->base, -1, EV_TIMEOUT, on_login_reply, l,
	    l->delay_ms ? &tv : NULL) < 0)
		panic("auth: cannot schedule a reply");
}

static void
login_done(void *arg)
{
	login_finish(arg);
}

int
auth_login(struct auth *a, const char *user, const char *password,
    enum auth_proto proto, const char *peer, const char *sid,
    struct event_base *base, auth_done_cb cb, void *arg)
{
	struct login *l = xcalloc(1, sizeof(*l));
	time_t now = time(NULL);
	enum store_err err;
	unsigned char hash_tag[AUTH_SHA256_LEN];

	l->auth = a;
	l->user = xstrndup(user, 255);
	l->password = xstrndup(password, 1024);
	l->proto = proto;
	snprintf(l->peer, sizeof(l->peer), "%s", peer);
	snprintf(l->sid, sizeof(l->sid), "%s", sid ? sid : "-");
	l->base = base;
	l->cb = cb;
	l->arg = arg;

	if (is_auth_locked(a, peer, now)) {
		l->result = AUTH_LOCKED;
		login_finish(l);
		return 0;
	}
	if (store_account_get(a->store, user, &l->account, &err) == 0) {
		l->has_account = true;
	} else if (err != STORE_NOT_FOUND) {
		l->result = AUTH_TEMP;
		login_finish(l);
		return 0;
	}
	if (l->has_account && l->account.locked_until > now) {
		l->result = AUTH_LOCKED;
		login_finish(l);
		return 0;
	}
	if (l->has_account) {
		cache_tags(a, l->user, l->password, l->account.password_hash,
		    l->tag, hash_tag);
		if (is_cached(a, l->tag, hash_tag, now)) {
			l->result = auth_account_policy(a, &l->account, proto,
			    now);
			login_finish(l);
			return 0;
		}
	}
	return workpool_submit(a->pool, login_work, base, login_done, l);
}
