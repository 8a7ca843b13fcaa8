/*
 * fuzz_jwt: bearer tokens (RFC 7519) for OAUTHBEARER and XOAUTH2, checked
 * by auth_jwt_subject() (src/auth/auth_jwt.c) against a JWKS (RFC 7517)
 * with the signature code of src/auth/auth_crypto.c.
 *
 * Input: byte 0: bits 0-1 the mode, bit 2 RS256 instead of ES256 when the
 * harness signs, bit 3 an issuer is configured, bit 4 an audience, bit 5
 * the harness writes the JOSE header itself.
 * - mode 0: the rest is a token, checked against the harness's JWKS;
 * - mode 1: the rest is "header NUL claims" (JSON); the harness encodes
 *   and signs them with its own keys (made at start, never in an input);
 * - mode 2: the rest is "JWKS NUL token": any keys, any token;
 * - mode 3: as 1, with the signature's last byte flipped.
 *
 * Checked:
 * - a token the harness did not sign is never accepted (modes 0, 2, 3:
 *   the inputs cannot make a signature), whatever the header says ("none",
 *   "HS256", a key of the other type, a kid of another key);
 * - an accepted token's claims hold: "exp" a number not more than 60 s
 *   past, "nbf" (when present) a number not more than 60 s ahead, "iss"
 *   the configured issuer, "aud" (string or array) naming the configured
 *   audience (none configured: nothing is accepted), and the subject
 *   returned is the "email" claim when "email_verified" is true (an
 *   unverified email refuses the token), else "sub", shorter than 256
 *   bytes;
 * - with issuer and audience configured, the harness's own header and no
 *   "email" claim, a token whose claims hold is accepted with its "sub";
 * - no leak.
 *
 * fuzz-sources: src/auth/auth_jwt.c src/auth/auth_crypto.c
 * fuzz-packages: libcrypto jansson
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "auth/auth_int.h"
#include "lib/base64.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000
#define ISSUER "https://idp.example"
#define AUDIENCE "postern"

static struct auth_settings settings;
static json_t *jwks;

/* The configuration auth_jwt_subject() reads, as auth.c would give it:
 * settings and keys (the keys of the call in mode 2). */
struct auth_conf {
	const void *jwks;
};

const struct auth_settings *
auth_conf_settings(const struct auth_conf *c)
{
	return &settings;
}

const void *
auth_conf_jwks(const struct auth_conf *c)
{
	return c->jwks;
}

static char *
subject(const void *keys, const char *token)
{
	struct auth_conf c = { keys };

	return auth_jwt_subject(&c, token, NOW);
}

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_jwt: invariant broken: %s\n", what);
		abort();
	}
}

static EVP_PKEY *ec_key, *rsa_key;

static char *
bn_b64url(EVP_PKEY *key, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[512];
	int n;

	check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, "key parameter");
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	return base64_encode(buf, (size_t)n, true);
}

static void
setup(void)
{
	char *x, *y, *n, *e, *text;

	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	check(ec_key != NULL && rsa_key != NULL, "keys made");
	x = bn_b64url(ec_key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
	y = bn_b64url(ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	n = bn_b64url(rsa_key, OSSL_PKEY_PARAM_RSA_N, 0);
	e = bn_b64url(rsa_key, OSSL_PKEY_PARAM_RSA_E, 0);
	text = xasprintf("{\"keys\":["
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec1\",\"x\":\"%s\","
	    "\"y\":\"%s\",\"alg\":\"ES256\"},"
	    "{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"n\":\"%s\",\"e\":\"%s\"},"
	    "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"}]}",
	    x, y, n, e);
	jwks = json_loads(text, 0, NULL);
	check(jwks != NULL, "JWKS parses");
	free(text);
	free(x);
	free(y);
	free(n);
	free(e);
}

/* The JWS signature of signing_input, base64url; NULL on failure. */
static char *
sign(bool is_rsa, const char *input)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY *key = is_rsa ? rsa_key : ec_key;
	unsigned char *sig = NULL, rs[64];
	size_t siglen = 0;
	char *out = NULL;

	if (EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(c, NULL, &siglen, (const unsigned char *)input,
	    strlen(input)) != 1)
		goto done;
	sig = malloc(siglen);
	if (EVP_DigestSign(c, sig, &siglen, (const unsigned char *)input,
	    strlen(input)) != 1)
		goto done;
	if (is_rsa) {
		out = base64_encode(sig, siglen, true);
	} else {
		/* RFC 7518 §3.4: r || s, 32 bytes each. */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		const BIGNUM *r, *s;

		check(es != NULL, "DER signature");
		ECDSA_SIG_get0(es, &r, &s);
		BN_bn2binpad(r, rs, 32);
		BN_bn2binpad(s, rs + 32, 32);
		ECDSA_SIG_free(es);
		out = base64_encode(rs, 64, true);
	}
done:
	free(sig);
	EVP_MD_CTX_free(c);
	return out;
}

static bool
is_aud_ok(const json_t *aud)
{
	size_t i;
	json_t *v;

	if (settings.oauth_audience == NULL)
		return false;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), AUDIENCE) == 0;
	json_array_foreach(aud, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), AUDIENCE)
		    == 0)
			return true;
	}
	return false;
}

/* Whether claims (a JSON text) hold now; *sub_out gets the subject. */
static bool
are_claims_ok(const char *text, const char **sub_out, json_t **j_out)
{
	json_t *c = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	const json_t *exp, *nbf;
	const char *iss, *sub;

	*j_out = c;
	*sub_out = NULL;
	if (!json_is_object(c))
		return false;
	exp = json_object_get(c, "exp");
	nbf = json_object_get(c, "nbf");
	iss = json_string_value(json_object_get(c, "iss"));
	if (!json_is_number(exp) || json_number_value(exp) + 60 <= NOW)
		return false;
	if (nbf != NULL && (!json_is_number(nbf) ||
	    json_number_value(nbf) - 60 > NOW))
		return false;
	if (settings.oauth_issuer == NULL || iss == NULL ||
	    strcmp(iss, ISSUER) != 0)
		return false;
	if (!is_aud_ok(json_object_get(c, "aud")))
		return false;
	sub = json_string_value(json_object_get(c, "email"));
	if (sub != NULL) {
		const json_t *v = json_object_get(c, "email_verified");

		if (!json_is_true(v) && !(json_is_string(v) &&
		    strcmp(json_string_value(v), "true") == 0))
			return false;
	}
	if (sub == NULL)
		sub = json_string_value(json_object_get(c, "sub"));
	*sub_out = sub;
	return sub != NULL && strlen(sub) < 256;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	bool is_rsa, is_own_header;
	char *in, *second, *result = NULL, *token = NULL;
	json_t *keys = jwks, *claims = NULL;
	size_t len;

	if (jwks == NULL)
		setup();
	if (size < 1)
		return 0;
	mode = data[0] & 3;
	is_rsa = data[0] & 4;
	settings.oauth_issuer = data[0] & 8 ? ISSUER : NULL;
	settings.oauth_audience = data[0] & 16 ? AUDIENCE : NULL;
	is_own_header = data[0] & 32;
	len = size - 1;
	in = malloc(len + 1);
	memcpy(in, data + 1, len);
	in[len] = '\0';
	second = strchr(in, '\0') + 1 <= in + len ? strchr(in, '\0') + 1 :
	    in + len;

	if (mode == 0) {
		result = subject(jwks, in);
		check(result == NULL, "an unsigned token is refused");
	} else if (mode == 2) {
		keys = json_loads(in, 0, NULL);
		if (keys != NULL) {
			result = subject(keys, second);
			check(result == NULL, "a token nobody signed is "
			    "refused, whatever the keys");
			json_decref(keys);
		}
	} else {
		const char *header = is_own_header ? (is_rsa ?
		    "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}" :
		    "{\"alg\":\"ES256\",\"kid\":\"ec1\"}") : in;
		const char *sub;
		char *h64 = base64_encode(header, strlen(header), true);
		char *c64 = base64_encode(second, strlen(second), true);
		char *input = xasprintf("%s.%s", h64, c64);
		char *sig = sign(is_rsa, input);
		bool is_ok;

		check(sig != NULL, "signed");
		if (mode == 3 && *sig != '\0') {
			/* Flip a bit the base64url text really carries. */
			size_t k = strlen(sig) / 2;

			sig[k] = sig[k] == 'A' ? 'B' : 'A';
		}
		token = xasprintf("%s.%s", input, sig);
		result = subject(jwks, token);
		is_ok = are_claims_ok(second, &sub, &claims);
		if (mode == 3)
			check(result == NULL, "a changed signature is refused");
		if (result != NULL)
			check(is_ok && strcmp(result, sub) == 0,
			    "an accepted token's claims hold");
		if (mode == 1 && is_own_header && is_ok &&
		    settings.oauth_issuer != NULL &&
		    settings.oauth_audience != NULL &&
		    json_object_get(claims, "email") == NULL)
			check(result != NULL, "a good token is accepted");
		free(sig);
		free(input);
		free(h64);
		free(c64);
	}
	json_decref(claims);
	free(token);
	free(result);
	free(in);
	return 0;
}
