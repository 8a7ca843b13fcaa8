/*
 * auth_jwt: bearer tokens for OAUTHBEARER (RFC 7628) and XOAUTH2: a JWT
 * (RFC 7519) signed with RS256 or ES256 by the configured issuer, whose
 * public keys come from a JWKS file (RFC 7517 §5). JSON is read with
 * jansson (DESIGN.md, Dependencies).
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/base64.h"
#include "lib/util.h"

#define JWT_MAX_LEN 16384
#define JWT_LEEWAY 60		/* seconds of clock skew tolerated */

void *
auth_jwks_load(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *jwks = json_load_file(path, 0, &jerr);
	json_t *keys;

	if (jwks == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return NULL;
	}
	keys = json_object_get(jwks, "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0) {
		snprintf(err, errlen, "%s: expected a JWKS object with a "
		    "non-empty \"keys\" array", path);
		json_decref(jwks);
		return NULL;
	}
	return jwks;
}

void
auth_jwks_free(void *jwks)
{
	json_decref(jwks);
}

/* Decodes one base64url part of a token as JSON. */
static json_t *
part_json(const char *s, size_t len)
{
	size_t n;
	unsigned char *raw = base64_decode(s, len, true, &n);
	json_t *j;

	if (raw == NULL)
		return NULL;
	j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const json_t *
jwks_key(const json_t *jwks, const char *kid, const char *alg)
{
	const json_t *keys = json_object_get(jwks, "keys");
	const char *kty = strcmp(alg, "RS256") == 0 ? "RSA" : "EC";
	size_t i;
	json_t *k;

	json_array_foreach(keys, i, k) {
		const char *kkid = json_string_value(json_object_get(k, "kid"));
		const char *kkty = json_string_value(json_object_get(k, "kty"));
		const char *kalg = json_string_value(json_object_get(k, "alg"));

		if (kkty == NULL || strcmp(kkty, kty) != 0)
			continue;
		if (kalg != NULL && strcmp(kalg, alg) != 0)
			continue;
		if (kid == NULL || (kkid != NULL && strcmp(kid, kkid) == 0))
			return k;
	}
	return NULL;
}

static bool
is_audience_ok(const json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (want == NULL)
		return false;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	json_array_foreach(aud, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

static bool
are_claims_ok(const struct auth_settings *s, const json_t *claims, time_t now)
{
	const json_t *exp = json_object_get(claims, "exp");
	const json_t *nbf = json_object_get(claims, "nbf");
	const char *iss = json_string_value(json_object_get(claims, "iss"));

	/* A token without an expiry would be valid forever: refused. */
	if (!json_is_number(exp) || json_number_value(exp) + JWT_LEEWAY <=
	    (double)now)
		return false;
	if (nbf != NULL && (!json_is_number(nbf) ||
	    json_number_value(nbf) - JWT_LEEWAY > (double)now))
		return false;
	/* Issuer and audience are required (auth_new refuses OAuth
	 * without them): a token for another application is not ours. */
	if (s->oauth_issuer == NULL || iss == NULL ||
	    strcmp(iss, s->oauth_issuer) != 0)
		return false;
	return is_audience_ok(json_object_get(claims, "aud"),
	    s->oauth_audience);
}

/* OpenID Connect Core §5.1: email_verified is a boolean; some providers
 * send the string "true". */
static bool
is_email_verified(const json_t *claims)
{
	const json_t *v = json_object_get(claims, "email_verified");

	return json_is_true(v) || (json_is_string(v) &&
	    strcmp(json_string_value(v), "true") == 0);
}

char *
auth_jwt_subject(const struct auth_conf *c, const char *token, time_t now)
{
	const void *jwks = auth_conf_jwks(c);
	size_t len = strnlen(token, JWT_MAX_LEN + 1);
	const char *dot1, *dot2;
	json_t *header = NULL, *claims = NULL;
	unsigned char *sig = NULL;
	size_t siglen;
	const char *alg, *subject;
	const json_t *key;
	char *result = NULL;

	if (jwks == NULL || len > JWT_MAX_LEN)
		return NULL;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) :
	    NULL;
	if (dot2 == NULL)
		return NULL;
	header = part_json(token, (size_t)(dot1 - token));
	claims = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	sig = base64_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), true,
	    &siglen);
	if (header == NULL || claims == NULL || sig == NULL)
		goto out;
	/* RFC 8725 §3.1: the algorithm is ours to choose, never "none". */
	alg = json_string_value(json_object_get(header, "alg"));
	if (alg == NULL || (strcmp(alg, "RS256") != 0 &&
	    strcmp(alg, "ES256") != 0))
		goto out;
	key = jwks_key(jwks, json_string_value(json_object_get(header, "kid")),
	    alg);
	if (key == NULL || !is_auth_jws_valid(alg, key, token,
	    (size_t)(dot2 - token), sig, siglen))
		goto out;
	if (!are_claims_ok(auth_conf_settings(c), claims, now))
		goto out;
	/* The email claim names the user only when the provider verified
	 * it: anyone can put any address on an account at most providers.
	 * Without an email claim, sub is the user's address. */
	subject = json_string_value(json_object_get(claims, "email"));
	if (subject != NULL && !is_email_verified(claims))
		goto out;
	if (subject == NULL)
		subject = json_string_value(json_object_get(claims, "sub"));
	if (subject != NULL && strlen(subject) < 256)
		result = xstrdup(subject);
out:
	json_decref(header);
	json_decref(claims);
	free(sig);
	return result;
}
