/*
 * auth_sasl: the SASL mechanisms (RFC 4422) SMTP AUTH, IMAP AUTHENTICATE
 * and POP3 AUTH share. The protocol carries base64 lines; this file turns
 * them into a login: PLAIN (RFC 4616) and LOGIN go through auth_login()
 * and its password hashing; SCRAM-SHA-256 (RFC 5802, RFC 7677) checks the
 * stored SCRAM secret; OAUTHBEARER (RFC 7628) and XOAUTH2 check a JWT.
 * An exchange belongs to one session on one event loop.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"

#define SASL_MAX_RESPONSE 16384	/* decoded bytes of one response */
#define SCRAM_NONCE_LEN 18

enum sasl_mech {
	MECH_PLAIN,
	MECH_LOGIN,
	MECH_SCRAM_SHA_256,
	MECH_OAUTHBEARER,
	MECH_XOAUTH2,
};

static const struct {
	const char *name;
	enum sasl_mech mech;
	bool needs_oauth;
} mechs[] = {
	{ "PLAIN", MECH_PLAIN, false },
	{ "LOGIN", MECH_LOGIN, false },
	{ "SCRAM-SHA-256", MECH_SCRAM_SHA_256, false },
	{ "OAUTHBEARER", MECH_OAUTHBEARER, true },
	{ "XOAUTH2", MECH_XOAUTH2, true },
};

struct auth_sasl {
	struct auth *auth;
	enum sasl_mech mech;
	enum auth_proto proto;
	char peer[64];
	char sid[32];
	unsigned step;
	char *challenge;	/* base64, returned to the caller */
	char *user;		/* LOGIN: the user name given first */
	/* SCRAM state between the two client messages. */
	char *client_first_bare;
	char *server_first;
	char *nonce;
	struct store_account account;
	bool has_account;
	bool is_failed;		/* OAuth: the error challenge was sent */
};

/* A result computed without the pool, handed to the caller's loop. */
struct sasl_reply {
	auth_done_cb cb;
	void *arg;
	enum auth_result result;
	struct auth_identity id;
};

static void
on_sasl_reply(evutil_socket_t fd, short what, void *arg)
{
	struct sasl_reply *r = arg;

	(void)fd;
	(void)what;
	r->cb(r->arg, r->result, r->result == AUTH_OK ? &r->id : NULL);
	free(r);
}

static const char *
mech_name(enum sasl_mech m)
{
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		if (mechs[i].mech == m)
			return mechs[i].name;
	}
	return "?";
}

/* Ends an exchange whose answer is known now: counts a failure (with its
 * growing delay) or checks the account's policy, logs, and calls back on
 * base's loop. */
static void
sasl_finish(struct auth_sasl *s, bool is_proven, struct event_base *base,
    auth_done_cb cb, void *arg)
{
	struct sasl_reply *r = xcalloc(1, sizeof(*r));
	time_t now = time(NULL);
	unsigned delay_ms = 0;
	struct timeval tv;

	r->cb = cb;
	r->arg = arg;
	if (is_auth_locked(s->auth, s->user ? s->user : "", s->peer,
	    s->has_account ? &s->account : NULL, now)) {
		r->result = AUTH_LOCKED;
	} else if (is_proven && s->has_account) {
		r->result = auth_account_policy(s->auth, &s->account, s->proto,
		    now);
		if (r->result == AUTH_OK) {
			r->id.account = s->account.id;
			snprintf(r->id.address, sizeof(r->id.address), "%s",
			    s->account.address);
			auth_login_succeeded(s->auth, &s->account, s->peer);
		}
	} else {
		r->result = AUTH_FAILED;
		auth_login_failed(s->auth, s->user ? s->user : "",
		    s->has_account ? &s->account : NULL, s->peer, now,
		    &delay_ms);
	}
	auth_result_count(r->result);
	log_info(s->sid, "auth.login user=<%s> mech=%s peer=%s result=%s",
	    s->has_account ? s->account.address : s->user ? s->user : "",
	    mech_name(s->mech), s->peer, auth_result_name(r->result));
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	if (event_base_once(base, -1, EV_TIMEOUT, on_sasl_reply, r,
	    delay_ms ? &tv : NULL) < 0)
		panic("auth: cannot schedule a reply");
}

const char *
auth_mechanisms(struct auth *a, bool is_plain_ok)
{
	bool has_oauth = has_auth_oauth(a);

	/* No mechanism at all before TLS, SCRAM included: SCRAM keeps the
	 * password from an eavesdropper, but not the session that follows
	 * (mail read or sent in clear, a hijack after login), nor the
	 * account's existence from a man in the middle (RFC 8314 §3: TLS
	 * before authentication). */
	if (!is_plain_ok)
		return "";
	return has_oauth ? "PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2" :
	    "PLAIN LOGIN SCRAM-SHA-256";
}

struct auth_sasl *
auth_sasl_new(struct auth *a, const char *mech, bool is_plain_ok,
    enum auth_proto proto, const char *peer, const char *sid)
{
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		struct auth_sasl *s;

		if (strcasecmp(mech, mechs[i].name) != 0)
			continue;
		if (!is_plain_ok ||
		    (mechs[i].needs_oauth && !has_auth_oauth(a)))
			return NULL;
		s = xcalloc(1, sizeof(*s));
		s->auth = a;
		s->mech = mechs[i].mech;
		s->proto = proto;
		snprintf(s->peer, sizeof(s->peer), "%s", peer);
		snprintf(s->sid, sizeof(s->sid), "%s", sid ? sid : "-");
		return s;
	}
	return NULL;
}

void
auth_sasl_free(struct auth_sasl **sp)
{
	struct auth_sasl *s = *sp;

	if (s == NULL)
		return;
	free(s->challenge);
	free(s->user);
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	if (s->has_account)
		store_account_deinit(&s->account);
	free(s);
	*sp = NULL;
}

const char *
auth_sasl_first_challenge(struct auth_sasl *s)
{
	/* LOGIN (draft-murchison-sasl-login) asks for the user name; the
	 * others wait for the client's first message (RFC 4422 §3.3). */
	return s->mech == MECH_LOGIN ? "VXNlcm5hbWU6" : "";
}

static const char *
challenge_set(struct auth_sasl *s, const void *data, size_t n)
{
	free(s->challenge);
	s->challenge = base64_encode(data, n, false);
	return s->challenge;
}

static void
account_load(struct auth_sasl *s, const char *user)
{
	enum store_err err;

	if (s->has_account)
		return;
	s->has_account = store_account_get(auth_store(s->auth), user,
	    &s->account, &err) == 0;
}

/* ---- PLAIN and LOGIN -------------------------------------------------- */

static enum auth_step
plain_step(struct auth_sasl *s, unsigned char *msg, size_t n,
    struct event_base *base, auth_done_cb cb, void *arg)
{
	/* RFC 4616 §2: [authzid] NUL authcid NUL passwd. */
	const char *authzid = (const char *)msg;
	const char *nul1 = memchr(msg, '\0', n);
	const char *authcid, *nul2, *passwd;

	if (nul1 == NULL)
		return AUTH_STEP_MALFORMED;
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', n - (size_t)(authcid - authzid));
	if (nul2 == NULL)
		return AUTH_STEP_MALFORMED;
	passwd = nul2 + 1;
	if (memchr(passwd, '\0', n - (size_t)(passwd - authzid)) != NULL)
		return AUTH_STEP_MALFORMED;
	/* No proxy logins: an authzid must name the same account. */
	if (*authzid != '\0' && strcasecmp(authzid, authcid) != 0) {
		free(s->user);
		s->user = xstrdup(authcid);
		sasl_finish(s, false, base, cb, arg);
		return AUTH_STEP_WAIT;
	}
	auth_login(s->auth, authcid, passwd, s->proto, s->peer, s->sid, base,
	    cb, arg);
	return AUTH_STEP_WAIT;
}

static enum auth_step
login_step(struct auth_sasl *s, unsigned char *msg, size_t n,
    const char **challenge_out, struct event_base *base, auth_done_cb cb,
    void *arg)
{
	if (memchr(msg, '\0', n) != NULL)
		return AUTH_STEP_MALFORMED;
	if (s->user == NULL) {
		s->user = xstrdup((const char *)msg);
		*challenge_out = "UGFzc3dvcmQ6";	/* "Password:" */
		return AUTH_STEP_CHALLENGE;
	}
	auth_login(s->auth, s->user, (const char *)msg, s->proto, s->peer,
	    s->sid, base, cb, arg);
	return AUTH_STEP_WAIT;
}

/* ---- SCRAM-SHA-256 ---------------------------------------------------- */

/* RFC 5802 §5.1: saslname, with "=2C" and "=3D" for ',' and '='. */
static char *
scram_name_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=') {
			out[o++] = s[i];
		} else if (i + 2 < n && s[i + 1] == '2' &&
		    (s[i + 2] == 'C' || s[i + 2] == 'c')) {
			out[o++] = ',';
			i += 2;
		} else if (i + 2 < n && s[i + 1] == '3' &&
		    (s[i + 2] == 'D' || s[i + 2] == 'd')) {
			out[o++] = '=';
			i += 2;
		} else {
			free(out);
			return NULL;
		}
	}
	out[o] = '\0';
	return out;
}

/* Parses an RFC 5803 secret "SCRAM-SHA-256$iter:salt$stored:server". */
static bool
scram_secret_parse(const char *secret, unsigned *iter_out, char **salt64_out,
    unsigned char stored[AUTH_SHA256_LEN],
    unsigned char server[AUTH_SHA256_LEN])
{
	const char *p, *colon, *dollar, *colon2;
	unsigned char *raw;
	size_t n;
	char *end;
	unsigned long iter;

	if (secret == NULL || strncmp(secret, "SCRAM-SHA-256$", 14) != 0)
		return false;
	p = secret + 14;
	iter = strtoul(p, &end, 10);
	if (end == p || *end != ':' || iter < 4096 || iter > 1000000)
		return false;
	colon = end;
	dollar = strchr(colon, '$');
	colon2 = dollar ? strchr(dollar, ':') : NULL;
	if (colon2 == NULL)
		return false;
	raw = base64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), false,
	    &n);
	if (raw == NULL || n != AUTH_SHA256_LEN) {
		free(raw);
		return false;
	}
	memcpy(stored, raw, n);
	free(raw);
	raw = base64_decode(colon2 + 1, strlen(colon2 + 1), false, &n);
	if (raw == NULL || n != AUTH_SHA256_LEN) {
		free(raw);
		return false;
	}
	memcpy(server, raw, n);
	free(raw);
	*iter_out = (unsigned)iter;
	*salt64_out = xstrndup(colon + 1, (size_t)(dollar - colon - 1));
	return true;
}

static enum auth_step
scram_first(struct auth_sasl *s, char *msg, size_t n,
    const char **challenge_out)
{
	const char *bare, *comma, *nonce, *gs2_end;
	unsigned char rnd[SCRAM_NONCE_LEN];
	unsigned char stored[AUTH_SHA256_LEN], server[AUTH_SHA256_LEN];
	char *rnd64, *salt64 = NULL;
	unsigned iter = 4096;

	/* gs2-header: "n,," or "y,,"; "p=" (channel binding) is not
	 * offered, and an authzid must not differ from the user. */
	if (n < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return AUTH_STEP_MALFORMED;
	/* RFC 5802 §7: gs2-header = cbind-flag "," [ "a=" saslname ] ",". */
	gs2_end = strchr(msg + 2, ',');
	if (gs2_end == NULL || (gs2_end != msg + 2 &&
	    strncmp(msg + 2, "a=", 2) != 0))
		return AUTH_STEP_MALFORMED;
	bare = gs2_end + 1;
	if (strncmp(bare, "n=", 2) != 0)
		return AUTH_STEP_MALFORMED;
	comma = strchr(bare + 2, ',');
	if (comma == NULL || strncmp(comma + 1, "r=", 2) != 0)
		return AUTH_STEP_MALFORMED;
	nonce = comma + 3;
	if (*nonce == '\0' || strchr(nonce, ',') != NULL)
		return AUTH_STEP_MALFORMED;
	free(s->user);
	s->user = scram_name_decode(bare + 2, (size_t)(comma - bare - 2));
	if (s->user == NULL)
		return AUTH_STEP_MALFORMED;
	if (gs2_end != msg + 2) {
		/* The authzid is a saslname too ("=2C", "=3D"). */
		char *authzid = scram_name_decode(msg + 4,
		    (size_t)(gs2_end - msg - 4));
		bool is_same = authzid != NULL &&
		    strcasecmp(authzid, s->user) == 0;

		free(authzid);
		if (!is_same)
			return AUTH_STEP_MALFORMED;
	}
	account_load(s, s->user);
	/* RFC 5802 §9: an unknown user (or one without a SCRAM secret)
	 * sees a salt and count like anyone's, and fails at the proof. */
	if (!s->has_account || !scram_secret_parse(s->account.scram_sha256,
	    &iter, &salt64, stored, server))
		auth_scram_fake(s->auth, s->user, &salt64, &iter);
	auth_random(rnd, sizeof(rnd));
	rnd64 = base64_encode(rnd, sizeof(rnd), false);
	s->nonce = xasprintf("%s%s", nonce, rnd64);
	s->client_first_bare = xstrdup(bare);
	s->server_first = xasprintf("r=%s,s=%s,i=%u", s->nonce, salt64, iter);
	free(rnd64);
	free(salt64);
	*challenge_out = challenge_set(s, s->server_first,
	    strlen(s->server_first));
	return AUTH_STEP_CHALLENGE;
}

static enum auth_step
scram_final(struct auth_sasl *s, char *msg, size_t n,
    const char **challenge_out, struct event_base *base, auth_done_cb cb,
    void *arg)
{
	unsigned char stored[AUTH_SHA256_LEN], server_key[AUTH_SHA256_LEN];
	unsigned char sig[AUTH_SHA256_LEN], key[AUTH_SHA256_LEN];
	unsigned char check[AUTH_SHA256_LEN], *proof;
	char *salt64 = NULL, *auth_msg, *final;
	const char *p, *r;
	size_t proof_len, without_proof;
	unsigned iter;
	bool is_proven = false;

	(void)n;
	/* client-final: c=..,r=..,p=.. (extensions refused). */
	if (strncmp(msg, "c=", 2) != 0)
		return AUTH_STEP_MALFORMED;
	r = strstr(msg, ",r=");
	p = strstr(msg, ",p=");
	if (r == NULL || p == NULL || p < r)
		return AUTH_STEP_MALFORMED;
	if ((size_t)(p - r - 3) != strlen(s->nonce) ||
	    strncmp(r + 3, s->nonce, strlen(s->nonce)) != 0) {
		sasl_finish(s, false, base, cb, arg);
		return AUTH_STEP_WAIT;
	}
	proof = base64_decode(p + 3, strlen(p + 3), false, &proof_len);
	if (proof == NULL)
		return AUTH_STEP_MALFORMED;
	without_proof = (size_t)(p - msg);
	auth_msg = xasprintf("%s,%s,%.*s", s->client_first_bare,
	    s->server_first, (int)without_proof, msg);
	if (s->has_account && proof_len == AUTH_SHA256_LEN &&
	    scram_secret_parse(s->account.scram_sha256, &iter, &salt64,
	    stored, server_key)) {
		/* RFC 5802 §3: ClientKey = ClientProof XOR ClientSignature;
		 * the proof holds when H(ClientKey) is the StoredKey. */
		auth_hmac_sha256(stored, sizeof(stored), auth_msg,
		    strlen(auth_msg), sig);
		for (size_t i = 0; i < AUTH_SHA256_LEN; i++)
			key[i] = proof[i] ^ sig[i];
		auth_sha256(key, sizeof(key), check);
		is_proven = is_equal_const_time(check, sizeof(check), stored,
		    sizeof(stored));
	}
	free(salt64);
	free(proof);
	if (!is_proven || is_auth_locked(s->auth, s->user, s->peer,
	    s->has_account ? &s->account : NULL, time(NULL))) {
		free(auth_msg);
		sasl_finish(s, false, base, cb, arg);
		return AUTH_STEP_WAIT;
	}
	auth_hmac_sha256(server_key, sizeof(server_key), auth_msg,
	    strlen(auth_msg), sig);
	free(auth_msg);
	{
		char *v = base64_encode(sig, sizeof(sig), false);

		final = xasprintf("v=%s", v);
		free(v);
	}
	*challenge_out = challenge_set(s, final, strlen(final));
	free(final);
	s->step = 2;	/* the client's empty answer completes it */
	return AUTH_STEP_CHALLENGE;
}

/* ---- OAUTHBEARER and XOAUTH2 ----------------------------------------- */

/* Finds "key=value" among \x01-separated fields; returns a new string. */
static char *
kv_field(const char *msg, size_t n, const char *key)
{
	size_t klen = strlen(key);
	const char *p = msg, *end = msg + n;

	while (p < end) {
		const char *sep = memchr(p, '\x01', (size_t)(end - p));
		size_t flen = sep ? (size_t)(sep - p) : (size_t)(end - p);

		if (flen > klen && strncmp(p, key, klen) == 0 &&
		    p[klen] == '=')
			return xstrndup(p + klen + 1, flen - klen - 1);
		p += flen + 1;
	}
	return NULL;
}

static enum auth_step
oauth_step(struct auth_sasl *s, char *msg, size_t n,
    const char **challenge_out, struct event_base *base, auth_done_cb cb,
    void *arg)
{
	char *authz = NULL, *auth = NULL, *subject = NULL;
	const char *token;
	bool is_proven = false;

	if (s->is_failed) {
		/* RFC 7628 §3.2.3: the client acknowledged the error. */
		sasl_finish(s, false, base, cb, arg);
		return AUTH_STEP_WAIT;
	}
	if (s->mech == MECH_OAUTHBEARER) {
		/* gs2-header "n,a=user," then \x01-separated fields. */
		const char *sep = memchr(msg, '\x01', n);
		const char *a = strstr(msg, "a=");

		if (n < 3 || msg[0] != 'n' || sep == NULL)
			return AUTH_STEP_MALFORMED;
		if (a != NULL && a < sep) {
			const char *c = memchr(a, ',', (size_t)(sep - a));

			if (c != NULL)
				authz = scram_name_decode(a + 2,
				    (size_t)(c - a - 2));
		}
		auth = kv_field(sep + 1, n - (size_t)(sep + 1 - msg), "auth");
	} else {
		authz = kv_field(msg, n, "user");
		auth = kv_field(msg, n, "auth");
	}
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
		free(authz);
		free(auth);
		return AUTH_STEP_MALFORMED;
	}
	token = auth + 7;
	{
		struct auth_conf *c = auth_conf_ref(s->auth);

		subject = auth_jwt_subject(c, token, time(NULL));
		auth_conf_unref(s->auth, &c);
	}
	if (subject != NULL && (authz == NULL ||
	    strcasecmp(authz, subject) == 0)) {
		account_load(s, subject);
		is_proven = s->has_account;
	}
	free(s->user);
	s->user = authz ? xstrdup(authz) : subject ? xstrdup(subject) : NULL;
	free(authz);
	free(subject);
	secret_wipe(auth, strlen(auth));
	free(auth);
	if (is_proven) {
		sasl_finish(s, true, base, cb, arg);
		return AUTH_STEP_WAIT;
	}
	/* RFC 7628 §3.2.2: a JSON error, then the client's \x01. */
	s->is_failed = true;
	*challenge_out = challenge_set(s, "{\"status\":\"invalid_token\"}", 26);
	return AUTH_STEP_CHALLENGE;
}

enum auth_step
auth_sasl_step(struct auth_sasl *s, const char *b64, size_t len,
    const char **challenge_out, struct event_base *base, auth_done_cb cb,
    void *arg)
{
	unsigned char *msg;
	size_t n;
	enum auth_step rc;

	*challenge_out = NULL;
	if (len > BASE64_ENCODED_SIZE(SASL_MAX_RESPONSE))
		return AUTH_STEP_MALFORMED;
	/* RFC 4954 §4: "=" is an empty initial response. */
	if (len == 1 && b64[0] == '=')
		len = 0;
	msg = base64_decode(b64, len, false, &n);
	if (msg == NULL)
		return AUTH_STEP_MALFORMED;
	switch (s->mech) {
	case MECH_PLAIN:
		rc = plain_step(s, msg, n, base, cb, arg);
		break;
	case MECH_LOGIN:
		rc = login_step(s, msg, n, challenge_out, base, cb, arg);
		break;
	case MECH_SCRAM_SHA_256:
		if (memchr(msg, '\0', n) != NULL) {
			rc = AUTH_STEP_MALFORMED;
		} else if (s->step == 0) {
			rc = scram_first(s, (char *)msg, n, challenge_out);
			s->step = rc == AUTH_STEP_CHALLENGE ? 1 : 0;
		} else if (s->step == 1) {
			rc = scram_final(s, (char *)msg, n, challenge_out,
			    base, cb, arg);
		} else {
			/* RFC 5802 §5: the server's final message sent, the
			 * client's empty response ends the exchange. */
			sasl_finish(s, n == 0, base, cb, arg);
			rc = AUTH_STEP_WAIT;
		}
		break;
	default:
		rc = oauth_step(s, (char *)msg, n, challenge_out, base, cb,
		    arg);
		break;
	}
	secret_wipe(msg, n);
	free(msg);
	return rc;
}
