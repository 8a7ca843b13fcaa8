/*
 * auth: logins. The flow of one check, from any event-loop thread:
 *   account lookup (store read) -> lockout of the (name, network), the
 *   network and the name (auth_lockout.c) -> cache of recent successes,
 *   else a password check on the pool -> account state and protocol
 *   switch -> result, delayed after failures. An unknown name goes the
 *   same way, hash included, and is answered as a wrong password.
 * The settings (swapped whole by a reload) and the cache are shared by
 * every worker under one mutex; both are touched a few times per login.
 */
#include "auth/auth_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/base64.h"

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/workpool.h"

#define CACHE_SLOTS 1024
#define SECRET_FILE "auth.secret"
#define SECRET_LEN 32

/* A successful check, remembered by an HMAC of user and password under a
 * key that lives only in memory: the cache never holds a password, and an
 * entry stops matching as soon as the account's hash changes. */
struct cache_entry {
	unsigned char tag[AUTH_SHA256_LEN];
	unsigned char hash_tag[AUTH_SHA256_LEN];
	time_t expires;
	bool is_used;
};

/* The settings in force and the issuer's keys. A reload builds a new one
 * and swaps it in; an OAuth check in flight keeps its own reference. */
struct auth_conf {
	unsigned refs;			/* under auth.mu */
	struct auth_settings s;		/* strings point to the copies */
	char *oauth_issuer, *oauth_audience;
	void *jwks;			/* json_t, see auth_jwt.c */
};

struct auth {
	struct store *store;
	struct auth_conf *conf;		/* under mu */
	struct auth_lockout *lockout;
	struct workpool *pool;
	/* Set by auth_stop(): logins not yet hashed answer AUTH_TEMP. */
	atomic_bool is_stopping;
	pthread_mutex_t mu;
	struct cache_entry cache[CACHE_SLOTS];
	unsigned char cache_key[AUTH_SHA256_LEN];
	/* From DATA/auth.secret: what unknown names' SCRAM salts derive
	 * from, the same across restarts and unknown to anyone else. */
	unsigned char secret[SECRET_LEN];
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
auth_result_count(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		metrics_add(METRIC_LOGINS_OK, 1);
		break;
	case AUTH_FAILED:
		metrics_add(METRIC_LOGINS_FAILED, 1);
		break;
	case AUTH_LOCKED:
		metrics_add(METRIC_LOGINS_LOCKED, 1);
		break;
	case AUTH_DISABLED:
	case AUTH_PROTO_DISABLED:
		metrics_add(METRIC_LOGINS_DISABLED, 1);
		break;
	case AUTH_TEMP:
		metrics_add(METRIC_LOGINS_TEMPFAIL, 1);
		break;
	}
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
	s->lockout_networks = 5;
	s->lockout_network_failures = 100;
	s->lockout_ipv4_prefix = 24;
	s->lockout_ipv6_prefix = 64;
	s->cache_ttl = 5 * 60;
	s->hash_threads = 2;
}

static void
conf_free(struct auth_conf *c)
{
	if (c == NULL)
		return;
	auth_jwks_free(c->jwks);
	free(c->oauth_issuer);
	free(c->oauth_audience);
	free(c);
}

/* A configuration from s, its JWKS file read. Returns NULL with err set
 * (a bad JWKS file, or OAuth without issuer and audience). */
static struct auth_conf *
conf_new(const struct auth_settings *s, char *err, size_t errlen)
{
	struct auth_conf *c = xcalloc(1, sizeof(*c));

	c->refs = 1;
	c->s = *s;
	if (s->oauth_jwks_file != NULL) {
		/* A token names an issuer and an audience; without both
		 * checked, tokens minted for any other application of the
		 * same provider would log in here (RFC 8725 §3.8, §3.9). */
		if (s->oauth_issuer == NULL || s->oauth_audience == NULL) {
			snprintf(err, errlen, "oauth_jwks needs oauth_issuer "
			    "and oauth_audience");
			free(c);
			return NULL;
		}
		c->jwks = auth_jwks_load(s->oauth_jwks_file, err, errlen);
		if (c->jwks == NULL) {
			free(c);
			return NULL;
		}
		c->oauth_issuer = xstrdup(s->oauth_issuer);
		c->oauth_audience = xstrdup(s->oauth_audience);
	}
	c->s.oauth_issuer = c->oauth_issuer;
	c->s.oauth_audience = c->oauth_audience;
	c->s.oauth_jwks_file = NULL;
	c->s.data_dir = NULL;
	return c;
}

/* Reads DATA/auth.secret, creating it (mode 0600, never through a
 * symbolic link) on the first start. */
static int
secret_load(const char *data_dir, unsigned char out[SECRET_LEN], char *err,
    size_t errlen)
{
	char *path = xasprintf("%s/%s", data_dir, SECRET_FILE);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 && errno == ENOENT) {
		unsigned char fresh[SECRET_LEN];

		auth_random(fresh, sizeof(fresh));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0 && (write(fd, fresh, sizeof(fresh)) !=
		    (ssize_t)sizeof(fresh) || fsync(fd) < 0)) {
			snprintf(err, errlen, "%s: cannot write: %s", path,
			    strerror(errno));
			close(fd);
			unlink(path);
			secret_wipe(fresh, sizeof(fresh));
			free(path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		secret_wipe(fresh, sizeof(fresh));
		/* Read back what is on disk: another process may have
		 * won the race to create it. */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		free(path);
		return -1;
	}
	n = read(fd, out, SECRET_LEN);
	close(fd);
	if (n != SECRET_LEN) {
		snprintf(err, errlen, "%s: expected %d bytes of secret; remove "
		    "the file to make a new one", path, SECRET_LEN);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

struct auth *
auth_new(struct store *st, const struct auth_settings *s, char *err,
    size_t errlen)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->store = st;
	a->conf = conf_new(s, err, errlen);
	if (a->conf == NULL) {
		free(a);
		return NULL;
	}
	if (s->data_dir != NULL) {
		if (secret_load(s->data_dir, a->secret, err, errlen) < 0) {
			conf_free(a->conf);
			free(a);
			return NULL;
		}
	} else {
		auth_random(a->secret, sizeof(a->secret));
	}
	auth_random(a->cache_key, sizeof(a->cache_key));
	pthread_mutex_init(&a->mu, NULL);
	a->lockout = auth_lockout_new();
	a->pool = workpool_new(s->hash_threads);
	return a;
}

int
auth_reload(struct auth *a, const struct auth_settings *s, char *err,
    size_t errlen)
{
	struct auth_conf *c = conf_new(s, err, errlen), *old;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&a->mu);
	old = a->conf;
	a->conf = c;
	if (--old->refs > 0)
		old = NULL;
	/* Remembered successes were checked under the old rules (a
	 * protocol may have been switched off): forget them. */
	memset(a->cache, 0, sizeof(a->cache));
	pthread_mutex_unlock(&a->mu);
	conf_free(old);
	return 0;
}

void
auth_stop(struct auth *a)
{
	if (a != NULL)
		atomic_store(&a->is_stopping, true);
}

void
auth_free(struct auth **ap)
{
	struct auth *a = *ap;

	if (a == NULL)
		return;
	workpool_free(&a->pool);
	auth_lockout_free(&a->lockout);
	conf_free(a->conf);
	pthread_mutex_destroy(&a->mu);
	secret_wipe(a->cache_key, sizeof(a->cache_key));
	secret_wipe(a->secret, sizeof(a->secret));
	free(a);
	*ap = NULL;
}

void
auth_settings_get(struct auth *a, struct auth_settings *out)
{
	pthread_mutex_lock(&a->mu);
	*out = a->conf->s;
	pthread_mutex_unlock(&a->mu);
	out->oauth_issuer = NULL;
	out->oauth_audience = NULL;
}

struct auth_conf *
auth_conf_ref(struct auth *a)
{
	struct auth_conf *c;

	pthread_mutex_lock(&a->mu);
	c = a->conf;
	c->refs++;
	pthread_mutex_unlock(&a->mu);
	return c;
}

void
auth_conf_unref(struct auth *a, struct auth_conf **cp)
{
	struct auth_conf *c = *cp;
	bool is_last;

	if (c == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	is_last = --c->refs == 0;
	pthread_mutex_unlock(&a->mu);
	if (is_last)
		conf_free(c);
	*cp = NULL;
}

const struct auth_settings *
auth_conf_settings(const struct auth_conf *c)
{
	return &c->s;
}

const void *
auth_conf_jwks(const struct auth_conf *c)
{
	return c->jwks;
}

bool
has_auth_oauth(struct auth *a)
{
	bool has;

	pthread_mutex_lock(&a->mu);
	has = a->conf->jwks != NULL;
	pthread_mutex_unlock(&a->mu);
	return has;
}

struct store *
auth_store(const struct auth *a)
{
	return a->store;
}

/* ---- Lockout ---------------------------------------------------------- */

bool
is_auth_locked(struct auth *a, const char *name, const char *peer,
    const struct store_account *acc, time_t now)
{
	struct auth_settings s;

	auth_settings_get(a, &s);
	/* A known account's name-wide lock is in the store (where `postern
	 * user unlock` lifts it); an unknown name's lives here, so that
	 * both answer alike. */
	if (acc != NULL && acc->locked_until > now)
		return true;
	return is_auth_lockout_locked(a->lockout, &s,
	    acc != NULL ? acc->address : name, peer, acc == NULL, now);
}

void
auth_login_succeeded(struct auth *a, const struct store_account *acc,
    const char *peer)
{
	struct auth_settings s;

	auth_settings_get(a, &s);
	auth_lockout_succeeded(a->lockout, &s, acc->address, peer,
	    time(NULL));
}

/* For an unknown name, the salt and iteration count a real account would
 * show (RFC 5802 §9 asks not to reveal whether an account exists): the
 * salt is a keyed hash of the name under DATA/auth.secret, so it is the
 * same on every try and across restarts, and nobody without the secret
 * can tell it from a random one; the count is the one every secret postern
 * makes has (auth_scram_secret). */
void
auth_scram_fake(struct auth *a, const char *user, char **salt64_out,
    unsigned *iter_out)
{
	unsigned char h[AUTH_SHA256_LEN];
	size_t len = strnlen(user, 255);
	char *msg = xmalloc(len + 12);

	memcpy(msg, "scram-salt:", 11);
	for (size_t i = 0; i < len; i++)
		msg[11 + i] = (char)tolower((unsigned char)user[i]);
	auth_hmac_sha256(a->secret, sizeof(a->secret), msg, len + 11, h);
	free(msg);
	*salt64_out = base64_encode(h, AUTH_SCRAM_SALT_LEN, false);
	*iter_out = AUTH_SCRAM_ITERATIONS;
}

void
auth_object_id(struct auth *a, char kind, int64_t account, int64_t id,
    int64_t salt, char out[AUTH_OBJECT_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[AUTH_SHA256_LEN];
	char msg[96];
	int n;

	n = snprintf(msg, sizeof(msg), "objectid:%c:%" PRId64 ":%" PRId64
	    ":%" PRId64, kind, account, id, salt);
	auth_hmac_sha256(a->secret, sizeof(a->secret), msg, (size_t)n, h);
	out[0] = kind;
	for (size_t i = 0; i < (AUTH_OBJECT_ID_LEN - 2) / 2; i++) {
		out[1 + 2 * i] = hex[h[i] >> 4];
		out[2 + 2 * i] = hex[h[i] & 15];
	}
	out[AUTH_OBJECT_ID_LEN - 1] = '\0';
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
	e->expires = now + a->conf->s.cache_ttl;
	e->is_used = true;
	pthread_mutex_unlock(&a->mu);
}

/* ---- Account policy --------------------------------------------------- */

bool
is_auth_proto_enabled(struct auth *a, const struct store_account *acc,
    enum auth_proto proto)
{
	enum store_switch sw = proto == AUTH_PROTO_IMAP ? acc->imap :
	    proto == AUTH_PROTO_POP3 ? acc->pop3 : acc->submission;
	struct auth_settings s;

	if (sw == STORE_SWITCH_DEFAULT) {
		auth_settings_get(a, &s);
		return s.proto_default[proto];
	}
	return sw == STORE_SWITCH_ON;
}

/* What an account that proved who it is may do. */
enum auth_result
auth_account_policy(struct auth *a, const struct store_account *acc,
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

	/* Shutting down: a queue of logins must not hold the exit for
	 * one hash each (150 queued on one thread took over 16 s). */
	if (atomic_load(&a->is_stopping)) {
		l->result = AUTH_TEMP;
		return;
	}
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
			auth_login_succeeded(a, &l->account, l->peer);
		return;
	}
	l->result = AUTH_FAILED;
	auth_login_failed(a, l->user, l->has_account ? &l->account : NULL,
	    l->peer, now, &l->delay_ms);
}

void
auth_login_failed(struct auth *a, const char *name,
    const struct store_account *acc, const char *peer, time_t now,
    unsigned *delay_ms_out)
{
	struct auth_settings s;
	time_t until;

	auth_settings_get(a, &s);
	*delay_ms_out = auth_lockout_failed(a->lockout, &s,
	    acc != NULL ? acc->address : name, peer, now, &until);
	if (until == 0)
		return;
	log_warn(NULL, "auth.account_locked account=<%s> known=%s seconds=%u "
	    "networks=%u", acc != NULL ? acc->address : name,
	    acc != NULL ? "yes" : "no", s.lockout_duration,
	    s.lockout_networks);
	if (acc != NULL)
		account_lock_persist(a, acc->id, until);
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
	auth_result_count(l->result);
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

	if (store_account_get(a->store, user, &l->account, &err) == 0) {
		l->has_account = true;
	} else if (err != STORE_NOT_FOUND) {
		l->result = AUTH_TEMP;
		login_finish(l);
		return 0;
	}
	if (is_auth_locked(a, l->user, peer,
	    l->has_account ? &l->account : NULL, now)) {
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
			if (l->result == AUTH_OK)
				auth_login_succeeded(a, &l->account, peer);
			login_finish(l);
			return 0;
		}
	}
	return workpool_submit(a->pool, login_work, base, login_done, l);
}
