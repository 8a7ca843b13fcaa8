/*
 * auth_int: what the files of src/auth share. auth_crypto.c is the only
 * file of auth that calls OpenSSL's libcrypto (hashes, HMAC, PBKDF2,
 * signatures), so that the rest reads as protocol logic.
 */
#ifndef POSTERN_AUTH_INT_H
#define POSTERN_AUTH_INT_H

#include <time.h>

#include "auth/auth.h"

#define AUTH_SHA256_LEN 32

void auth_sha256(const void *data, size_t n,
    unsigned char out[AUTH_SHA256_LEN]);
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
const struct auth_settings *auth_settings_get(const struct auth *a);
struct store *auth_store(const struct auth *a);
bool is_auth_locked(struct auth *a, const char *key, time_t now);
unsigned auth_failure_count(struct auth *a, const char *key, time_t now,
    bool *locked_out);
void auth_failure_clear(struct auth *a, const char *key);
unsigned auth_failure_delay_ms(unsigned n);
bool is_auth_proto_enabled(const struct auth *a,
    const struct store_account *acc, enum auth_proto proto);
enum auth_result auth_account_policy(const struct auth *a,
    const struct store_account *acc, enum auth_proto proto, time_t now);
/* Counts a failed login for peer and the account (NULL: unknown user),
 * locking either when it reaches the limit; sets the reply delay. */
void auth_login_failed(struct auth *a, const struct store_account *acc,
    const char *peer, time_t now, unsigned *delay_ms_out);

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
/* Returns the token's subject address (email claim, else sub) as a new
 * string, or NULL when the token is not valid now. */
char *auth_jwt_subject(const struct auth *a, const void *jwks,
    const char *token, time_t now);
const void *auth_jwks(const struct auth *a);

#endif
