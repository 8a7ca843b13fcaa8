/*
 * fuzz_sasl: SASL exchanges (src/auth/auth_sasl.c) as SMTP AUTH, IMAP
 * AUTHENTICATE and POP3 AUTH drive them: PLAIN (RFC 4616), LOGIN,
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), OAUTHBEARER (RFC 7628) and XOAUTH2.
 *
 * Input: byte 0 picks the mechanism (bits 0-2), whether the client
 * messages are sent as given (bit 3, so that the base64 layer is fuzzed
 * too) or base64-encoded by the harness, and for SCRAM whether the
 * harness answers the server's first message itself with a correct proof
 * (bit 4) made from the right or a wrong password (bit 5). The rest: the
 * client's messages, one a line.
 *
 * The world around the mechanisms is a test double: one account,
 * alice@example.org, password "secret" (SCRAM secret computed at start),
 * no lockout, auth_login() for PLAIN and LOGIN only records its
 * arguments, and the JWKS holds a key made at start whose private half
 * the inputs never see.
 *
 * Checked:
 * - a challenge is strict base64; SCRAM's server-first message is
 *   "r=<client nonce><ours>,s=<base64>,i=<4096 or more>";
 * - an exchange ends (WAIT) exactly once: one call of auth_login() or one
 *   callback, never both, never none; MALFORMED ends it too;
 * - PLAIN and LOGIN hand auth_login() exactly the user and password of
 *   the message (auth_login() bounds them), and PLAIN never with a
 *   foreign authzid;
 * - AUTH_OK comes only from a SCRAM proof the harness made with the
 *   right password for alice, and such a proof always succeeds, with the
 *   server signature RFC 5802 §3 defines; a token is never accepted (the
 *   inputs cannot sign one);
 * - no leak after auth_sasl_free().
 *
 * fuzz-sources: src/auth/auth_sasl.c src/auth/auth_crypto.c
 * fuzz-sources: src/auth/auth_jwt.c
 * fuzz-packages: libcrypto jansson
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth_int.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_sasl: invariant broken: %s\n", what);
		abort();
	}
}

/* ---- The test double ------------------------------------------------- */

#define USER "alice@example.org"
#define PASSWORD "secret"

static unsigned char salted[AUTH_SHA256_LEN], client_key[AUTH_SHA256_LEN],
    stored_key[AUTH_SHA256_LEN], server_key[AUTH_SHA256_LEN];
static char *scram_secret;
static int dummy_store, dummy_auth;
static void *jwks;
static struct auth_settings settings;

static struct {
	int logins;
	char user[300], password[17000];
	bool has_nul;
} seen;

struct store *
auth_store(const struct auth *a)
{
	return (struct store *)&dummy_store;
}

struct auth_conf {
	int unused;
};
static struct auth_conf conf;

bool
has_auth_oauth(struct auth *a)
{
	return jwks != NULL;
}

struct auth_conf *
auth_conf_ref(struct auth *a)
{
	return &conf;
}

void
auth_conf_unref(struct auth *a, struct auth_conf **c)
{
	*c = NULL;
}

/* The login counters of /metrics (auth.c) count nothing here. */
void
auth_result_count(enum auth_result r)
{
}

const struct auth_settings *
auth_conf_settings(const struct auth_conf *c)
{
	return &settings;
}

const void *
auth_conf_jwks(const struct auth_conf *c)
{
	return jwks;
}

/* auth.c derives it from DATA/auth.secret; any fixed key will do here. */
void
auth_scram_fake(struct auth *a, const char *user, char **salt64_out,
    unsigned *iter_out)
{
	unsigned char h[AUTH_SHA256_LEN];

	auth_hmac_sha256("fuzz", 4, user, strlen(user), h);
	*salt64_out = base64_encode(h, AUTH_SCRAM_SALT_LEN, false);
	*iter_out = AUTH_SCRAM_ITERATIONS;
}

int
store_account_get(struct store *st, const char *address,
    struct store_account *a_out, enum store_err *err_out)
{
	memset(a_out, 0, sizeof(*a_out));
	if (strcmp(address, USER) != 0) {
		*err_out = STORE_NOT_FOUND;
		return -1;
	}
	a_out->id = 7;
	a_out->address = xstrdup(USER);
	a_out->scram_sha256 = xstrdup(scram_secret);
	a_out->is_enabled = true;
	return 0;
}

void
store_account_deinit(struct store_account *a)
{
	free(a->address);
	free(a->scram_sha256);
	memset(a, 0, sizeof(*a));
}

bool
is_auth_locked(struct auth *a, const char *name, const char *peer,
    const struct store_account *acc, time_t now)
{
	return false;
}

enum auth_result
auth_account_policy(struct auth *a, const struct store_account *acc,
    enum auth_proto proto, time_t now)
{
	return AUTH_OK;
}

void
auth_login_failed(struct auth *a, const char *name,
    const struct store_account *acc, const char *peer, time_t now,
    unsigned *delay_ms_out)
{
	*delay_ms_out = 0;
}

void
auth_login_succeeded(struct auth *a, const struct store_account *acc,
    const char *peer)
{
}

const char *
auth_result_name(enum auth_result r)
{
	return r == AUTH_OK ? "ok" : "failed";
}

int
auth_login(struct auth *a, const char *user, const char *password,
    enum auth_proto proto, const char *peer, const char *sid,
    struct event_base *base, auth_done_cb cb, void *arg)
{
	seen.logins++;
	snprintf(seen.user, sizeof(seen.user), "%s", user);
	snprintf(seen.password, sizeof(seen.password), "%s", password);
	return 0;
}

/* ---- The harness ----------------------------------------------------- */

static struct {
	int calls;
	enum auth_result result;
} done;

static void
on_done(void *arg, enum auth_result result, const struct auth_identity *id)
{
	done.calls++;
	done.result = result;
	if (result == AUTH_OK)
		check(id != NULL && strcmp(id->address, USER) == 0 &&
		    id->account == 7, "identity of the account");
}

static void
setup(void)
{
	static const unsigned char salt[] = "0123456789abcdef";
	char *salt64, *stored64, *server64;

	log_configure(LOG_LEVEL_ERROR, false);
	auth_pbkdf2_sha256(PASSWORD, salt, 16, 4096, salted);
	auth_hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key);
	auth_sha256(client_key, sizeof(client_key), stored_key);
	auth_hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key);
	salt64 = base64_encode(salt, 16, false);
	stored64 = base64_encode(stored_key, sizeof(stored_key), false);
	server64 = base64_encode(server_key, sizeof(server_key), false);
	scram_secret = xasprintf("SCRAM-SHA-256$4096:%s$%s:%s", salt64,
	    stored64, server64);
	free(salt64);
	free(stored64);
	free(server64);
	/* A JWKS with an EC key nobody here can sign for: a random point
	 * would do as well; this one is P-256's generator. */
	{
		static const char text[] = "{\"keys\":[{\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"kid\":\"k1\",\"alg\":\"ES256\","
		    "\"x\":\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\","
		    "\"y\":\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"}]}";
		char path[] = "/tmp/fuzz_sasl_jwks.XXXXXX";
		char err[256];
		int fd = mkstemp(path);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

		check(f != NULL, "temporary JWKS file");
		fputs(text, f);
		fclose(f);
		jwks = auth_jwks_load(path, err, sizeof(err));
		unlink(path);
		check(jwks != NULL, "JWKS loads");
	}
}

/* The client-final message for server_first, with a proof made from the
 * right (or a wrong) key; *sig_out gets the server signature to expect. */
static char *
scram_client_final(const char *bare, const char *server_first,
    bool is_right, unsigned char sig_out[AUTH_SHA256_LEN])
{
	const char *r = server_first + 2;
	size_t rlen = strcspn(r, ",");
	unsigned char ck[AUTH_SHA256_LEN], sk[AUTH_SHA256_LEN];
	unsigned char csig[AUTH_SHA256_LEN], proof[AUTH_SHA256_LEN];
	char *without, *auth_msg, *proof64, *final;

	memcpy(ck, client_key, sizeof(ck));
	if (!is_right)
		ck[0] ^= 1;
	auth_sha256(ck, sizeof(ck), sk);
	without = xasprintf("c=biws,r=%.*s", (int)rlen, r);
	auth_msg = xasprintf("%s,%s,%s", bare, server_first, without);
	auth_hmac_sha256(sk, sizeof(sk), auth_msg, strlen(auth_msg), csig);
	for (size_t i = 0; i < sizeof(proof); i++)
		proof[i] = ck[i] ^ csig[i];
	auth_hmac_sha256(server_key, sizeof(server_key), auth_msg,
	    strlen(auth_msg), sig_out);
	proof64 = base64_encode(proof, sizeof(proof), false);
	final = xasprintf("%s,p=%s", without, proof64);
	free(proof64);
	free(auth_msg);
	free(without);
	return final;
}

static void
server_first_check(const char *sf, const char *first)
{
	const char *nonce = strstr(strchr(first + 2, ','), ",r=");
	size_t nlen;
	const char *s, *i;
	unsigned char *salt;
	size_t saltn;

	check(nonce != NULL, "client nonce found");
	nonce += 3;
	nlen = strlen(nonce);
	check(strncmp(sf, "r=", 2) == 0 && strncmp(sf + 2, nonce, nlen) == 0,
	    "server nonce starts with the client's");
	s = strstr(sf, ",s=");
	i = strstr(sf, ",i=");
	check(s != NULL && i != NULL && s < i, "salt and iterations");
	check(strchr(sf + 2 + nlen, ',') == s, "our nonce has no comma");
	salt = base64_decode(s + 3, (size_t)(i - s - 3), false, &saltn);
	check(salt != NULL && saltn >= 16, "salt is base64");
	free(salt);
	check(strtoul(i + 3, NULL, 10) >= 4096, "iterations at least 4096");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "PLAIN", "LOGIN",
	    "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2", "plain", "Scram-Sha-256",
	    "NONE" };
	static struct event_base *base;
	struct auth_sasl *s;
	const char *mech;
	bool is_raw, is_client, is_right, is_ended = false, is_made = false;
	bool is_user_alice = false;
	unsigned char want_sig[AUTH_SHA256_LEN];
	char *first = NULL, *server_first = NULL;
	unsigned nmsg = 0;
	size_t off = 1;

	if (base == NULL) {
		base = event_base_new();
		setup();
	}
	if (size < 1)
		return 0;
	mech = names[data[0] & 7];
	is_raw = data[0] & 8;
	is_client = data[0] & 16;
	is_right = !(data[0] & 32);
	memset(&seen, 0, sizeof(seen));
	memset(&done, 0, sizeof(done));

	s = auth_sasl_new((struct auth *)&dummy_auth, mech, true,
	    AUTH_PROTO_SUBMISSION, "192.0.2.1", "fz");
	if (s == NULL) {
		check(strcmp(mech, "NONE") == 0, "known mechanism made");
		return 0;
	}
	check(auth_sasl_new((struct auth *)&dummy_auth, mech, false,
	    AUTH_PROTO_IMAP, "192.0.2.1", "fz") == NULL,
	    "nothing before TLS");
	{
		const char *c = auth_sasl_first_challenge(s);
		size_t n;
		unsigned char *d = base64_decode(c, strlen(c), false, &n);

		check(d != NULL, "first challenge is base64");
		free(d);
	}

	while (!is_ended && off <= size) {
		const uint8_t *line = data + off;
		const uint8_t *nl = memchr(line, '\n', size - off);
		size_t len = nl ? (size_t)(nl - line) : size - off;
		char *b64, *made = NULL;
		const char *challenge;
		enum auth_step rc;
		int before = seen.logins;

		off += len + 1;
		if (is_client && nmsg == 1 && server_first != NULL &&
		    first != NULL) {
			/* The harness answers as a correct client. */
			const char *bare = strchr(first + 2, ',') + 1;

			made = scram_client_final(bare, server_first, is_right,
			    want_sig);
			line = (const uint8_t *)made;
			len = strlen(made);
			is_made = true;
		}
		if (is_raw && made == NULL) {
			b64 = xstrndup((const char *)line, len);
		} else {
			b64 = base64_encode(line, len, false);
		}
		if (nmsg == 0 && made == NULL) {
			free(first);
			first = xstrndup((const char *)line, len);
			is_user_alice = strstr(first, ",n=" USER ",") != NULL;
		}
		rc = auth_sasl_step(s, b64, strlen(b64), &challenge, base,
		    on_done, NULL);
		free(b64);
		nmsg++;
		switch (rc) {
		case AUTH_STEP_CHALLENGE: {
			size_t n;
			unsigned char *d;

			check(challenge != NULL, "a challenge to send");
			d = base64_decode(challenge, strlen(challenge), false,
			    &n);
			check(d != NULL, "challenge is base64");
			if ((strcasecmp(mech, "SCRAM-SHA-256") == 0) &&
			    nmsg == 1 && !is_raw) {
				server_first_check((char *)d, first);
				server_first = xstrdup((char *)d);
			}
			if (made != NULL) {
				char *v = base64_encode(want_sig,
				    sizeof(want_sig), false);

				check(is_right && is_user_alice,
				    "a proof passes only with the password");
				check(strncmp((char *)d, "v=", 2) == 0 &&
				    strcmp((char *)d + 2, v) == 0,
				    "server signature of RFC 5802 §3");
				free(v);
			}
			free(d);
			check(seen.logins == before && done.calls == 0,
			    "no result while challenging");
			break;
		}
		case AUTH_STEP_WAIT:
			event_base_loop(base, EVLOOP_NONBLOCK);
			check(seen.logins - before + done.calls == 1,
			    "an ended exchange answers exactly once");
			if (made != NULL)
				check(!is_right || !is_user_alice,
				    "a right proof gets the server signature");
			is_ended = true;
			break;
		case AUTH_STEP_MALFORMED:
			check(seen.logins == before && done.calls == 0,
			    "a malformed message gets no result");
			is_ended = true;
			break;
		}
		if (seen.logins > before) {
			if (strcasecmp(mech, "PLAIN") == 0 && !is_raw &&
			    made == NULL) {
				/* authzid NUL authcid NUL passwd */
				char *z = xmalloc(len + 1);
				const char *u;

				memcpy(z, line, len);
				z[len] = '\0';
				u = memchr(z, '\0', len);
				check(u != NULL && u < z + len, "PLAIN has a NUL");
				u++;
				check(*z == '\0' || strcasecmp(z, u) == 0,
				    "no proxy login");
				check(strncmp(seen.user, u, 255) == 0 &&
				    strcmp(seen.password, u + strlen(u) + 1)
				    == 0, "PLAIN's user and password");
				free(z);
			}
		}
		free(made);
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	if (done.result == AUTH_OK && done.calls > 0)
		check(is_made && is_right && is_user_alice,
		    "AUTH_OK only with the password");
	check(done.calls <= 1, "one callback at most");
	auth_sasl_free(&s);
	check(s == NULL, "free clears the pointer");
	free(first);
	free(server_first);
	return 0;
}
