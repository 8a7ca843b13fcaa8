/*
 * auth_int: what the files of src/auth share. auth_crypto.c is the only
 * file of auth that calls OpenSSL's libcrypto (hashes, HMAC, PBKDF2,
 * signatures), so that the rest reads as protocol logic.
 */
#ifndef POSTERN_AUTH_INT_H
#define POSTERN_AUTH_INT_H

#include <time.h>

#include "auth/auth.h"

#define AUTH_SCRAM_ITERATIONS 4096	/* RFC 7677 §4 minimum */
#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_NETWORK_LEN 17	/* family byte and 16 address bytes */

void auth_hmac_sha256(const void *key, size_t keylen, const void *data,
    size_t n, unsigned char out[AUTH_SHA256_LEN]);
void auth_pbkdf2_sha256(const char *password, const unsigned char *salt,
    size_t saltlen, unsigned iterations, unsigned char out[AUTH_SHA256_LEN]);
void auth_random(void *buf, size_t n);

/* Verifies a JWS signature over signed (RFC 7515 §5.2) with a JWK (a
 * jansson json_t object, passed as void * to keep jansson out of here):
 * alg "RS256" (kty RSA: n, e) or "ES256" (kty EC, crv P-256: x, y; sig is
 * r||s, RFC 7518 §3.4). */
bool is_auth_jws_valid(const char *alg, const void *jwk, const void *signed_,
    size_t signedlen, const unsigned char *sig, size_t siglen);

/* auth.c: shared with the SASL mechanisms. */
struct auth_conf;
/* A copy of the settings in force (its strings are NULL). */
void auth_settings_get(struct auth *a, struct auth_settings *out);
/* The configuration in force, kept until unref even across a reload. */
struct auth_conf *auth_conf_ref(struct auth *a);
void auth_conf_unref(struct auth *a, struct auth_conf **c);
const struct auth_settings *auth_conf_settings(const struct auth_conf *c);
const void *auth_conf_jwks(const struct auth_conf *c);
bool has_auth_oauth(struct auth *a);
struct store *auth_store(const struct auth *a);
/* Whether name may not try from peer now: its (name, network), the
 * network, or the name is locked (acc: the account name names, whose
 * name-wide lock is the store's locked_until; NULL for an unknown name). */
bool is_auth_locked(struct auth *a, const char *name, const char *peer,
    const struct store_account *acc, time_t now);
/* Counts a failed login of name (acc: its account, or NULL) from peer,
 * locks what reached its limit (a name-wide lock of an account is written
 * to the store), and sets the reply delay. */
void auth_login_failed(struct auth *a, const char *name,
    const struct store_account *acc, const char *peer, time_t now,
    unsigned *delay_ms_out);
void auth_login_succeeded(struct auth *a, const struct store_account *acc,
    const char *peer);
unsigned auth_failure_delay_ms(unsigned n);
bool is_auth_proto_enabled(struct auth *a, const struct store_account *acc,
    enum auth_proto proto);
enum auth_result auth_account_policy(struct auth *a,
    const struct store_account *acc, enum auth_proto proto, time_t now);
/* The SCRAM salt (base64, new string) and iteration count shown for an
 * unknown name: derived from DATA/auth.secret, stable across restarts. */
void auth_scram_fake(struct auth *a, const char *user, char **salt64_out,
    unsigned *iter_out);

/* auth_lockout.c: the failure counters (see there). */
struct auth_lockout;
struct auth_lockout *auth_lockout_new(void);
void auth_lockout_free(struct auth_lockout **lo);
/* The client's network of peer (a numeric address) as bytes; returns
 * their length. */
size_t auth_lockout_network(const char *peer, unsigned v4_prefix,
    unsigned v6_prefix, unsigned char out[AUTH_NETWORK_LEN]);
bool is_auth_lockout_locked(struct auth_lockout *lo,
    const struct auth_settings *s, const char *name, const char *peer,
    bool is_name_checked, time_t now);
/* Counts a failure; returns the delay (ms) to answer it after. Sets
 * *name_locked_out to the end of a name-wide lock this failure began, else
 * 0. */
unsigned auth_lockout_failed(struct auth_lockout *lo,
    const struct auth_settings *s, const char *name, const char *peer,
    time_t now, time_t *name_locked_out);
void auth_lockout_succeeded(struct auth_lockout *lo,
    const struct auth_settings *s, const char *name, const char *peer,
    time_t now);

/* auth_app_password.c: checks password against the account's app
 * passwords allowed for proto; on a match notes its use (time, peer) and
 * copies its name into name_out. */
bool auth_app_password_check(struct auth *a, const struct store_account *acc,
    const char *password, enum auth_proto proto, const char *peer,
    char *name_out, size_t namelen);

/* auth_jwt.c: the issuer's keys, and bearer tokens checked against them
 * (RFC 7519: signature, exp, nbf, iss, aud). */
void *auth_jwks_load(const char *path, char *err, size_t errlen);
void auth_jwks_free(void *jwks);
/* Returns the token's subject address as a new string, or NULL when the
 * token is not valid now under c's issuer, audience and keys. The subject
 * is the email claim when email_verified is true, else sub. */
char *auth_jwt_subject(const struct auth_conf *c, const char *token,
    time_t now);

/* Counts a decided login in lib/metrics (/metrics of src/http). */
void auth_result_count(enum auth_result r);

#endif
