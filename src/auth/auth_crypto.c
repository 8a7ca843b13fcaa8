/*
 * auth_crypto: the cryptography of authentication, through OpenSSL 3's
 * libcrypto (DESIGN.md, Dependencies): SCRAM's hashes (RFC 5802 §3) and
 * JWT signatures (RFC 7518 §3.3, §3.4); also postern's one SHA-256
 * (auth.h), which the DKIM body hash in queue uses.
 */
#include "auth/auth_int.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/util.h"

struct auth_sha256 {
	EVP_MD_CTX *ctx;
};

struct auth_sha256 *
auth_sha256_new(void)
{
	struct auth_sha256 *h = xcalloc(1, sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(),
	    NULL) != 1)
		panic("cannot start SHA-256");
	return h;
}

void
auth_sha256_update(struct auth_sha256 *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		panic("SHA-256 update failed");
}

void
auth_sha256_final(struct auth_sha256 **hp, unsigned char out[AUTH_SHA256_LEN])
{
	struct auth_sha256 *h = *hp;
	unsigned int n = AUTH_SHA256_LEN;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != AUTH_SHA256_LEN)
		panic("SHA-256 final failed");
	EVP_MD_CTX_free(h->ctx);
	free(h);
	*hp = NULL;
}

void
auth_sha256(const void *data, size_t n, unsigned char out[AUTH_SHA256_LEN])
{
	struct auth_sha256 *h = auth_sha256_new();

	auth_sha256_update(h, data, n);
	auth_sha256_final(&h, out);
}

void
auth_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
    unsigned char out[AUTH_SHA256_LEN])
{
	unsigned int len = AUTH_SHA256_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) == NULL)
		panic("HMAC-SHA-256 failed");
}

void
auth_pbkdf2_sha256(const char *password, const unsigned char *salt,
    size_t saltlen, unsigned iterations, unsigned char out[AUTH_SHA256_LEN])
{
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	    (int)saltlen, (int)iterations, EVP_sha256(), AUTH_SHA256_LEN,
	    out) != 1)
		panic("PBKDF2 failed");
}

void
auth_random(void *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1)
		panic("no random bytes");
}

/* Decodes a base64url member of a JWK into a BIGNUM. */
static BIGNUM *
jwk_bignum(const json_t *jwk, const char *name)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	unsigned char *raw;
	size_t n;
	BIGNUM *bn;

	if (s == NULL || strlen(s) > 2048)
		return NULL;
	raw = base64_decode(s, strlen(s), true, &n);
	if (raw == NULL)
		return NULL;
	bn = BN_bin2bn(raw, (int)n, NULL);
	free(raw);
	return bn;
}

static EVP_PKEY *
jwk_rsa_key(const json_t *jwk)
{
	BIGNUM *n = jwk_bignum(jwk, "n"), *e = jwk_bignum(jwk, "e");
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (n == NULL || e == NULL || bld == NULL)
		goto out;
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
out:
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static EVP_PKEY *
jwk_ec_key(const json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *xs = json_string_value(json_object_get(jwk, "x"));
	const char *ys = json_string_value(json_object_get(jwk, "y"));
	unsigned char point[65], *x = NULL, *y = NULL;
	size_t xn = 0, yn = 0;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (crv == NULL || strcmp(crv, "P-256") != 0 || xs == NULL ||
	    ys == NULL || strlen(xs) > 64 || strlen(ys) > 64)
		return NULL;
	x = base64_decode(xs, strlen(xs), true, &xn);
	y = base64_decode(ys, strlen(ys), true, &yn);
	if (x == NULL || y == NULL || xn != 32 || yn != 32)
		goto out;
	/* SEC 1 §2.3.3 uncompressed point: 04 || x || y. */
	point[0] = 0x04;
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
out:
	free(x);
	free(y);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* JWS ES256 signatures are r||s; OpenSSL verifies DER. */
static unsigned char *
es256_to_der(const unsigned char *sig, size_t siglen, size_t *derlen)
{
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	int n;

	if (siglen != 64)
		return NULL;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (es == NULL || r == NULL || s == NULL ||
	    ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	n = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return NULL;
	*derlen = (size_t)n;
	return der;
}

bool
is_auth_jws_valid(const char *alg, const void *jwkp, const void *signed_,
    size_t signedlen, const unsigned char *sig, size_t siglen)
{
	const json_t *jwk = jwkp;
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	size_t derlen = 0;
	bool ok = false;

	if (kty == NULL)
		return false;
	if (strcmp(alg, "RS256") == 0 && strcmp(kty, "RSA") == 0) {
		key = jwk_rsa_key(jwk);
		der = NULL;
	} else if (strcmp(alg, "ES256") == 0 && strcmp(kty, "EC") == 0) {
		key = jwk_ec_key(jwk);
		der = es256_to_der(sig, siglen, &derlen);
		if (der == NULL)
			goto out;
		sig = der;
		siglen = derlen;
	} else {
		return false;
	}
	md = EVP_MD_CTX_new();
	if (key == NULL || md == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	ok = EVP_DigestVerify(md, sig, siglen, signed_, signedlen) == 1;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	OPENSSL_free(der);
	return ok;
}
