/*
 * auth: who a client is. Password and app-password checks, the SASL
 * mechanisms every protocol shares (PLAIN, LOGIN, SCRAM-SHA-256,
 * OAUTHBEARER, XOAUTH2), lockout after repeated failures, and the
 * per-account protocol switches. One struct auth per process, shared by
 * every worker; functions may be called from any event-loop thread and
 * complete on that thread. Password hashing runs on a small thread pool,
 * never on an event loop.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct event_base;
struct auth;
struct auth_sasl;

enum auth_proto {
	AUTH_PROTO_IMAP,
	AUTH_PROTO_POP3,
	AUTH_PROTO_SUBMISSION,
};

/* What a login came to. The client hears only what its protocol allows
 * (RFC 5530, RFC 2449 [AUTH], RFC 4954); logs tell them apart. */
enum auth_result {
	AUTH_OK,
	AUTH_FAILED,		/* unknown user, wrong password, bad token */
	AUTH_LOCKED,		/* too many failures: temporarily locked */
	AUTH_DISABLED,		/* the account is disabled */
	AUTH_PROTO_DISABLED,	/* this protocol is off for the account */
	AUTH_TEMP,		/* the store failed: try later */
};

/* Words for logs: "ok", "failed", "locked", ... */
const char *auth_result_name(enum auth_result r);

struct auth_settings {
	bool proto_default[AUTH_PROTO_SUBMISSION + 1];
	unsigned lockout_failures;	/* per (name, network) before a lock */
	unsigned lockout_window;	/* seconds they are counted over */
	unsigned lockout_duration;	/* seconds a first lock lasts */
	unsigned lockout_networks;	/* networks failing to lock a name */
	unsigned lockout_network_failures; /* per network, any name */
	unsigned lockout_ipv4_prefix;	/* a client network: /24 */
	unsigned lockout_ipv6_prefix;	/* and /64 */
	unsigned cache_ttl;		/* seconds a success is remembered */
	unsigned hash_threads;		/* read by auth_new only */
	/* OAUTHBEARER/XOAUTH2: the issuer and audience tokens must name,
	 * and the issuer's keys (JWKS file). NULL: OAuth is off; a JWKS
	 * file needs both issuer and audience. */
	const char *oauth_issuer;
	const char *oauth_audience;
	const char *oauth_jwks_file;
	/* Where auth.secret lives (read by auth_new only); NULL: a secret
	 * that lasts as long as the process (tests). */
	const char *data_dir;
};

/* Fills s with the defaults: every protocol on; 10 failures of one name
 * from one network in 15 minutes lock that pair for 15 minutes (longer
 * each time again), 100 from one network lock the network, failures from
 * 5 networks lock the name; successes remembered 5 minutes. */
void auth_settings_default(struct auth_settings *s);

/* Borrows st; copies s. Returns NULL with err set (a bad JWKS file, OAuth
 * without issuer or audience, an unreadable DATA/auth.secret). */
struct auth *auth_new(struct store *st, const struct auth_settings *s,
    char *err, size_t errlen);
/* SIGHUP: the settings of s replace the current ones (hash_threads and
 * data_dir excepted) and the JWKS file is read again; logins in flight
 * finish under the old ones. Returns 0, or -1 with err set and the old
 * settings kept. */
int auth_reload(struct auth *a, const struct auth_settings *s, char *err,
    size_t errlen);
/* The server is stopping: logins still waiting for a hash thread answer
 * AUTH_TEMP at once instead of being hashed. */
void auth_stop(struct auth *a);
void auth_free(struct auth **a);

struct auth_identity {
	int64_t account;
	char address[256];
	char app_password[64];	/* the app password's name, or "" */
};

typedef void (*auth_done_cb)(void *arg, enum auth_result result,
    const struct auth_identity *id);

/* Checks user and password (IMAP LOGIN, POP3 USER/PASS, and SASL PLAIN
 * and LOGIN). peer is the client address, for lockout and logs. Returns 0
 * and calls cb once later on base's thread, or -1 (never calls cb). The
 * password is copied and wiped; the caller wipes its own copy. */
int auth_login(struct auth *a, const char *user, const char *password,
    enum auth_proto proto, const char *peer, const char *sid,
    struct event_base *base, auth_done_cb cb, void *arg);

/* The mechanisms to announce, space-separated. is_plain_ok is true on a
 * TLS connection or when allow_plaintext_auth is set; false (before TLS)
 * gives "": no mechanism is offered in clear, SCRAM included. */
const char *auth_mechanisms(struct auth *a, bool is_plain_ok);

/* Starts a SASL exchange. Returns NULL when mech is unknown or not offered
 * (is_plain_ok as for auth_mechanisms: false refuses every mechanism). */
struct auth_sasl *auth_sasl_new(struct auth *a, const char *mech,
    bool is_plain_ok, enum auth_proto proto, const char *peer,
    const char *sid);

enum auth_step {
	AUTH_STEP_CHALLENGE,	/* send *challenge_out, read a response */
	AUTH_STEP_WAIT,		/* the result comes to cb */
	AUTH_STEP_MALFORMED,	/* not base64 or not the mechanism's form */
};

/* Feeds one client response as received: base64 text (RFC 4422 §3; "="
 * is an empty initial response). challenge_out (base64, owned by the
 * exchange, valid until the next step) is what to send on CHALLENGE. On
 * WAIT, cb runs once later on base's thread. */
enum auth_step auth_sasl_step(struct auth_sasl *s, const char *b64,
    size_t len, const char **challenge_out, struct event_base *base,
    auth_done_cb cb, void *arg);

/* The challenge to send (base64; "" for an empty one) when the client
 * gave no initial response: LOGIN's "Username:", else empty. */
const char *auth_sasl_first_challenge(struct auth_sasl *s);

/* Ends the exchange (also to cancel it; a WAIT in flight still calls back
 * its cb, which must not touch the exchange). */
void auth_sasl_free(struct auth_sasl **s);

/* ---- SASL exchanges as protocols drive them (auth_exchange.c) -------- */

enum auth_exchange_end {
	AUTH_X_DONE,		/* the login was decided: see the result */
	AUTH_X_UNKNOWN_MECH,	/* no such mechanism */
	AUTH_X_NEEDS_TLS,	/* a mechanism we have, but not before TLS */
	AUTH_X_MALFORMED,	/* a response was not base64, or not the
				 * mechanism's form */
	AUTH_X_CANCELLED,	/* the client sent "*" */
};

/* How one protocol speaks SASL; each call gets the session. */
struct auth_exchange_ops {
	/* Sends a challenge (base64; "334 x", "+ x"); the next line the
	 * client sends goes to auth_exchange_line(). */
	void (*challenge)(void *session, const char *b64);
	/* The result comes later: stop reading (net_conn_wait). */
	void (*wait)(void *session);
	/* The first call when it comes: false when the session's connection
	 * is gone (net_conn_unwait); nothing else is called then. */
	bool (*resumed)(void *session);
	/* The exchange is over; result and id (NULL unless AUTH_OK) only
	 * mean something with AUTH_X_DONE. */
	void (*end)(void *session, enum auth_exchange_end how,
	    enum auth_result result, const struct auth_identity *id);
};

/* Lives in the session; at most one exchange at a time. */
struct auth_exchange {
	const struct auth_exchange_ops *ops;
	void *session;
	struct auth_sasl *sasl;		/* while active */
	struct event_base *base;
};

/* Who asks, for auth_exchange_start(). auth may be NULL (no AUTH here). */
struct auth_exchange_args {
	struct auth *auth;
	bool is_plain_ok;	/* TLS, or allow_plaintext_auth */
	enum auth_proto proto;
	const char *peer;
	const char *sid;
	struct event_base *base;
};

void auth_exchange_init(struct auth_exchange *x,
    const struct auth_exchange_ops *ops, void *session);
void auth_exchange_deinit(struct auth_exchange *x);
/* Starts mech (mlen bytes) with the initial response ir (irlen bytes;
 * NULL when the client gave none). Calls challenge() or wait(), or end()
 * at once for an unknown mechanism, one not allowed before TLS, or a
 * malformed initial response. */
void auth_exchange_start(struct auth_exchange *x,
    const struct auth_exchange_args *a, const char *mech, size_t mlen,
    const char *ir, size_t irlen);
/* Whether the exchange waits for a response line (or for its result). */
bool is_auth_exchange_active(const struct auth_exchange *x);
/* A response line from the client, CRLF removed. */
void auth_exchange_line(struct auth_exchange *x, const char *line,
    size_t len);

/* ---- Passwords -------------------------------------------------------- */

/* Hashes password with yescrypt. Returns a new crypt(3) string, or NULL
 * when libcrypt fails. */
char *auth_password_hash(const char *password);
/* Checks password against a crypt(3) hash ($y$, $6$, $5$, $2b$). */
bool is_auth_password_ok(const char *password, const char *hash);
/* The RFC 5803 SCRAM-SHA-256 secret for password (random salt, 4096
 * iterations), for store_account.scram_sha256. */
char *auth_scram_secret(const char *password);

/* ---- Object identifiers ------------------------------------------------ */

/* Characters of an object identifier, its NUL included. */
#define AUTH_OBJECT_ID_LEN 26

/* An identifier for one object of an account that tells nothing about it
 * (IMAP OBJECTID, RFC 8474 §7): kind (a letter, its first character)
 * followed by 24 hex digits of a keyed hash of kind, account, id and salt
 * under DATA/auth.secret. The same arguments give the same identifier,
 * across restarts too; without the secret nobody can tell from it how
 * many objects exist, their order, or whether another account holds the
 * same message. */
void auth_object_id(struct auth *a, char kind, int64_t account, int64_t id,
    int64_t salt, char out[AUTH_OBJECT_ID_LEN]);

/* ---- SHA-256 ---------------------------------------------------------- */

/* The one SHA-256 of postern (auth_crypto.c): SCRAM here, the DKIM body
 * hash in queue. Signatures and TLS stay in net. */
#define AUTH_SHA256_LEN 32

struct auth_sha256;

/* In steps: _new, any number of _update, then _final writes the digest
 * and frees *h. */
struct auth_sha256 *auth_sha256_new(void);
void auth_sha256_update(struct auth_sha256 *h, const void *data,
    size_t len);
void auth_sha256_final(struct auth_sha256 **h,
    unsigned char out[AUTH_SHA256_LEN]);
/* At once. */
void auth_sha256(const void *data, size_t n,
    unsigned char out[AUTH_SHA256_LEN]);

#endif
