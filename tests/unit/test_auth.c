/*
 * test_auth: password hashes against published vectors, SCRAM-SHA-256
 * against RFC 7677 §3 and through a whole exchange, JWT bearer tokens,
 * the lockout rules (per name and network, never evicting a lock) and the
 * SCRAM answer to unknown names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "auth/auth_int.h"
#include "lib/base64.h"
#include "lib/util.h"
#include "store/store.h"

/* ---- Hashes ------------------------------------------------------------ */

static void
test_auth_sha512_crypt_vector_verifies(void **state)
{
	/* Ulrich Drepper's SHA-crypt specification, first test vector. */
	static const char hash[] = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iK"
	    "wSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";

	(void)state;
	assert_true(is_auth_password_ok("Hello world!", hash));
	assert_false(is_auth_password_ok("Hello world?", hash));
}

static void
test_auth_sha256_crypt_vector_verifies(void **state)
{
	static const char hash[] = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/"
	    "GNooZaBBGWEc5";

	(void)state;
	assert_true(is_auth_password_ok("Hello world!", hash));
	assert_false(is_auth_password_ok("hello world!", hash));
}

static void
test_auth_bcrypt_vector_verifies(void **state)
{
	/* Openwall's crypt_blowfish test vector for "U*U". */
	static const char hash[] = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0X"
	    "ouQYb4YMJKvyOeW";

	(void)state;
	assert_true(is_auth_password_ok("U*U", hash));
	assert_false(is_auth_password_ok("U*V", hash));
}

static void
test_auth_new_hash_is_yescrypt_and_verifies(void **state)
{
	char *h = auth_password_hash("correct horse");

	(void)state;
	assert_non_null(h);
	assert_memory_equal(h, "$y$", 3);
	assert_true(is_auth_password_ok("correct horse", h));
	assert_false(is_auth_password_ok("correct horsf", h));
	assert_false(is_auth_password_ok("", h));
	free(h);
}

static void
test_auth_unknown_scheme_refused(void **state)
{
	(void)state;
	/* DES crypt and plain text are never accepted. */
	assert_false(is_auth_password_ok("abc", "abJnggxhB/yWI"));
	assert_false(is_auth_password_ok("abc", "abc"));
	assert_false(is_auth_password_ok("abc", NULL));
}

/* ---- SCRAM ------------------------------------------------------------ */

static void
test_auth_scram_rfc7677_vector(void **state)
{
	/* RFC 7677 §3. */
	static const char auth_msg[] = "n=user,r=rOprNGfwEbeRWgbNEkqO,"
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,"
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
	unsigned char salted[32], ck[32], sk[32], stored[32], sig[32];
	unsigned char proof[32];
	size_t saltlen;
	unsigned char *salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24,
	    false, &saltlen);
	char *p64, *v64;

	(void)state;
	assert_non_null(salt);
	auth_pbkdf2_sha256("pencil", salt, saltlen, 4096, salted);
	auth_hmac_sha256(salted, 32, "Client Key", 10, ck);
	auth_sha256(ck, 32, stored);
	auth_hmac_sha256(stored, 32, auth_msg, strlen(auth_msg), sig);
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	p64 = base64_encode(proof, 32, false);
	assert_string_equal(p64, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	auth_hmac_sha256(salted, 32, "Server Key", 10, sk);
	auth_hmac_sha256(sk, 32, auth_msg, strlen(auth_msg), sig);
	v64 = base64_encode(sig, 32, false);
	assert_string_equal(v64, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	free(salt);
	free(p64);
	free(v64);
}

static void
test_auth_scram_secret_has_rfc5803_form(void **state)
{
	char *s = auth_scram_secret("pencil");

	(void)state;
	assert_non_null(s);
	assert_memory_equal(s, "SCRAM-SHA-256$4096:", 19);
	assert_non_null(strchr(s + 19, '$'));
	free(s);
}

/* ---- A store with one account, for the exchanges ----------------------- */

struct fixture {
	char dir[256];
	struct store *store;
	struct auth *auth;
	struct event_base *base;
	enum auth_result result;
	int calls;
	char address[256];
};

static void
rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fail_msg("cannot clean %s", dir);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *tmp = getenv("POSTERN_TEST_TMP");
	struct auth_settings as;
	struct store_account a = {
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_OFF,
		.submission = STORE_SWITCH_DEFAULT,
	};
	enum store_err err;
	char e[512];

	evthread_use_pthreads();
	mkdir(tmp ? tmp : "/tmp", 0700);
	snprintf(f->dir, sizeof(f->dir), "%s/test_auth.%d",
	    tmp ? tmp : "/tmp", (int)getpid());
	rm_rf(f->dir);
	f->store = store_open(f->dir, e, sizeof(e));
	assert_non_null(f->store);
	assert_int_equal(store_domain_add(f->store, "example.test", &err), 0);
	a.address = xstrdup("user@example.test");
	a.password_hash = auth_password_hash("pencil");
	a.scram_sha256 = auth_scram_secret("pencil");
	assert_int_equal(store_account_add(f->store, &a, &err), 0);
	store_account_deinit(&a);
	auth_settings_default(&as);
	as.lockout_failures = 3;
	as.lockout_networks = 2;
	as.data_dir = f->dir;
	f->auth = auth_new(f->store, &as, e, sizeof(e));
	assert_non_null(f->auth);
	f->base = event_base_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	auth_free(&f->auth);
	store_close(&f->store);
	event_base_free(f->base);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void
on_done(void *arg, enum auth_result r, const struct auth_identity *id)
{
	struct fixture *f = arg;

	f->result = r;
	f->calls++;
	snprintf(f->address, sizeof(f->address), "%s", id ? id->address : "");
}

/* Runs the loop until the callback came. */
static void
wait_done(struct fixture *f)
{
	for (int i = 0; i < 2000 && f->calls == 0; i++) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(f->base, &tv);
		event_base_dispatch(f->base);
	}
	assert_int_equal(f->calls, 1);
}

static void
test_auth_login_right_and_wrong_password(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(auth_login(f->auth, "User@Example.test", "pencil",
	    AUTH_PROTO_IMAP, "192.0.2.1", NULL, f->base, on_done, f), 0);
	wait_done(f);
	assert_int_equal(f->result, AUTH_OK);
	assert_string_equal(f->address, "user@example.test");
	f->calls = 0;
	auth_login(f->auth, "user@example.test", "pencil2", AUTH_PROTO_IMAP,
	    "192.0.2.1", NULL, f->base, on_done, f);
	wait_done(f);
	assert_int_equal(f->result, AUTH_FAILED);
}

static void
test_auth_login_protocol_switch_off(void **state)
{
	struct fixture *f = *state;

	auth_login(f->auth, "user@example.test", "pencil", AUTH_PROTO_POP3,
	    "192.0.2.1", NULL, f->base, on_done, f);
	wait_done(f);
	assert_int_equal(f->result, AUTH_PROTO_DISABLED);
}

static enum auth_result
login_from(struct fixture *f, const char *user, const char *password,
    const char *peer)
{
	f->calls = 0;
	assert_int_equal(auth_login(f->auth, user, password, AUTH_PROTO_IMAP,
	    peer, NULL, f->base, on_done, f), 0);
	wait_done(f);
	return f->result;
}

/* Three failures from one /24 lock that network out of the account, not
 * the owner elsewhere; failures from two networks lock the account. */
static void
test_auth_lockout_after_failures(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(login_from(f, "user@example.test", "wrong",
		    "192.0.2.7"), AUTH_FAILED);
	/* The same /24 is the same client network. */
	assert_int_equal(login_from(f, "user@example.test", "pencil",
	    "192.0.2.8"), AUTH_LOCKED);
	/* The owner from another network is not locked out. */
	assert_int_equal(login_from(f, "user@example.test", "pencil",
	    "198.51.100.8"), AUTH_OK);
	/* That success cleared the account's tally: two more networks. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(login_from(f, "user@example.test", "wrong",
		    "203.0.113.1"), AUTH_FAILED);
	for (int i = 0; i < 3; i++)
		assert_int_equal(login_from(f, "user@example.test", "wrong",
		    "203.0.114.1"), AUTH_FAILED);
	/* Two networks failed three times each: locked everywhere. */
	assert_int_equal(login_from(f, "user@example.test", "pencil",
	    "198.51.100.9"), AUTH_LOCKED);
}

/* An unknown name is answered as a wrong password, locks included. */
static void
test_auth_unknown_name_locks_like_an_account(void **state)
{
	struct fixture *f = *state;
	const char *peers[] = { "192.0.2.7", "203.0.113.1" };

	for (int p = 0; p < 2; p++) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(login_from(f, "ghost@example.test",
			    "wrong", peers[p]), AUTH_FAILED);
		assert_int_equal(login_from(f, "ghost@example.test", "wrong",
		    peers[p]), AUTH_LOCKED);
	}
	assert_int_equal(login_from(f, "Ghost@Example.test", "x",
	    "198.51.100.9"), AUTH_LOCKED);
}

/* Runs one SASL step, which must answer with a challenge. */
static char *
sasl_challenge(struct fixture *f, struct auth_sasl *s, const char *msg)
{
	char *b64 = base64_encode(msg, strlen(msg), false);
	const char *challenge;
	unsigned char *raw;
	size_t n;

	assert_int_equal(auth_sasl_step(s, b64, strlen(b64), &challenge,
	    f->base, on_done, f), AUTH_STEP_CHALLENGE);
	free(b64);
	raw = base64_decode(challenge, strlen(challenge), false, &n);
	assert_non_null(raw);
	return (char *)raw;
}

/* The client side of SCRAM-SHA-256, to drive the server. */
static void
scram_client_final(const char *password, const char *client_first_bare,
    const char *server_first, char *out, size_t outlen)
{
	const char *r = strstr(server_first, "r=") + 2;
	const char *sp = strstr(server_first, ",s=") + 3;
	const char *ip = strstr(server_first, ",i=") + 3;
	char nonce[128], salt64[64], *auth_msg, *p64;
	unsigned char *salt, salted[32], ck[32], stored[32], sig[32];
	unsigned char proof[32];
	size_t saltlen;

	snprintf(nonce, sizeof(nonce), "%.*s", (int)(strchr(r, ',') - r), r);
	snprintf(salt64, sizeof(salt64), "%.*s", (int)(strchr(sp, ',') - sp),
	    sp);
	salt = base64_decode(salt64, strlen(salt64), false, &saltlen);
	auth_pbkdf2_sha256(password, salt, saltlen, (unsigned)atoi(ip),
	    salted);
	auth_hmac_sha256(salted, 32, "Client Key", 10, ck);
	auth_sha256(ck, 32, stored);
	auth_msg = xasprintf("%s,%s,c=biws,r=%s", client_first_bare,
	    server_first, nonce);
	auth_hmac_sha256(stored, 32, auth_msg, strlen(auth_msg), sig);
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	p64 = base64_encode(proof, 32, false);
	snprintf(out, outlen, "c=biws,r=%s,p=%s", nonce, p64);
	free(p64);
	free(auth_msg);
	free(salt);
}

static void
scram_exchange(struct fixture *f, const char *password)
{
	struct auth_sasl *s = auth_sasl_new(f->auth, "SCRAM-SHA-256", true,
	    AUTH_PROTO_IMAP, "192.0.2.9", NULL);
	char *server_first, final[512];
	const char *challenge;

	assert_non_null(s);
	server_first = sasl_challenge(f, s,
	    "n,,n=user@example.test,r=fyko+d2lbbFgONRv9qkxdawL");
	assert_memory_equal(server_first, "r=fyko+d2lbbFgONRv9qkxdawL", 26);
	scram_client_final(password,
	    "n=user@example.test,r=fyko+d2lbbFgONRv9qkxdawL", server_first,
	    final, sizeof(final));
	free(server_first);
	{
		char *b64 = base64_encode(final, strlen(final), false);
		enum auth_step step = auth_sasl_step(s, b64, strlen(b64),
		    &challenge, f->base, on_done, f);

		free(b64);
		if (strcmp(password, "pencil") == 0) {
			assert_int_equal(step, AUTH_STEP_CHALLENGE);
			/* The server proves itself with v=. */
			assert_int_equal(auth_sasl_step(s, "", 0, &challenge,
			    f->base, on_done, f), AUTH_STEP_WAIT);
		} else {
			assert_int_equal(step, AUTH_STEP_WAIT);
		}
	}
	wait_done(f);
	auth_sasl_free(&s);
}

static void
test_auth_scram_exchange_succeeds(void **state)
{
	struct fixture *f = *state;

	scram_exchange(f, "pencil");
	assert_int_equal(f->result, AUTH_OK);
	assert_string_equal(f->address, "user@example.test");
}

static void
test_auth_scram_wrong_password_fails(void **state)
{
	struct fixture *f = *state;

	scram_exchange(f, "pencil!");
	assert_int_equal(f->result, AUTH_FAILED);
}

/* Before TLS no mechanism is offered or started, SCRAM included. */
static void
test_auth_no_mechanism_before_tls(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {
		"PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_null(auth_sasl_new(f->auth, names[i], false,
		    AUTH_PROTO_IMAP, "192.0.2.1", NULL));
	assert_string_equal(auth_mechanisms(f->auth, false), "");
	assert_string_equal(auth_mechanisms(f->auth, true),
	    "PLAIN LOGIN SCRAM-SHA-256");
}

static void
test_auth_plain_exchange(void **state)
{
	struct fixture *f = *state;
	struct auth_sasl *s = auth_sasl_new(f->auth, "plain", true,
	    AUTH_PROTO_IMAP, "192.0.2.1", NULL);
	static const char msg[] = "\0user@example.test\0pencil";
	char *b64 = base64_encode(msg, sizeof(msg) - 1, false);
	const char *challenge;

	assert_non_null(s);
	assert_int_equal(auth_sasl_step(s, b64, strlen(b64), &challenge,
	    f->base, on_done, f), AUTH_STEP_WAIT);
	wait_done(f);
	assert_int_equal(f->result, AUTH_OK);
	assert_int_equal(auth_sasl_step(s, "!!", 2, &challenge, f->base,
	    on_done, f), AUTH_STEP_MALFORMED);
	free(b64);
	auth_sasl_free(&s);
}

/* Found by fuzz_sasl: a gs2-header whose authzid part was not "a=..."
 * was taken, and an authzid was compared still encoded, so that a name
 * with "=" or "," could not name itself (RFC 5802 §5.1, §7). */
static void
test_auth_scram_gs2_header_strict(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"n,r=x,n=user@example.test,r=abc",
		"n,a=other@example.test,n=user@example.test,r=abc",
		"n,a=us=2Cer@example.test,n=user@example.test,r=abc",
	};
	const char *challenge;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct auth_sasl *s = auth_sasl_new(f->auth, "SCRAM-SHA-256",
		    true, AUTH_PROTO_IMAP, "192.0.2.1", NULL);
		char *b64 = base64_encode(bad[i], strlen(bad[i]), false);

		assert_int_equal(auth_sasl_step(s, b64, strlen(b64),
		    &challenge, f->base, on_done, f), AUTH_STEP_MALFORMED);
		free(b64);
		auth_sasl_free(&s);
	}
	{
		static const char good[] =
		    "n,a=U=3Dx=2Cy@example.test,n=u=3Dx=2Cy@example.test,r=abc";
		struct auth_sasl *s = auth_sasl_new(f->auth, "SCRAM-SHA-256",
		    true, AUTH_PROTO_IMAP, "192.0.2.1", NULL);
		char *b64 = base64_encode(good, strlen(good), false);

		assert_int_equal(auth_sasl_step(s, b64, strlen(b64),
		    &challenge, f->base, on_done, f), AUTH_STEP_CHALLENGE);
		free(b64);
		auth_sasl_free(&s);
	}
}

/* ---- Lockout arithmetic ----------------------------------------------- */

static void
test_auth_failure_delay_grows_and_caps(void **state)
{
	(void)state;
	assert_int_equal(auth_failure_delay_ms(1), 250);
	assert_int_equal(auth_failure_delay_ms(2), 500);
	assert_int_equal(auth_failure_delay_ms(3), 1000);
	assert_int_equal(auth_failure_delay_ms(6), 8000);
	assert_int_equal(auth_failure_delay_ms(60), 8000);
}

static void
lockout_settings(struct auth_settings *s)
{
	auth_settings_default(s);
	s->lockout_failures = 3;
	s->lockout_window = 900;
	s->lockout_duration = 900;
}

static void
test_auth_failures_counted_in_window(void **state)
{
	struct auth_lockout *lo = auth_lockout_new();
	struct auth_settings s;
	time_t t = 1000000, until;

	(void)state;
	lockout_settings(&s);
	auth_lockout_failed(lo, &s, "k", "192.0.2.1", t, &until);
	auth_lockout_failed(lo, &s, "k", "192.0.2.1", t + 1, &until);
	/* After the window, counting starts over. */
	auth_lockout_failed(lo, &s, "k", "192.0.2.1", t + 901, &until);
	auth_lockout_failed(lo, &s, "k", "192.0.2.1", t + 902, &until);
	assert_false(is_auth_lockout_locked(lo, &s, "k", "192.0.2.1", true,
	    t + 902));
	auth_lockout_failed(lo, &s, "k", "192.0.2.1", t + 903, &until);
	assert_int_equal(until, 0);
	assert_true(is_auth_lockout_locked(lo, &s, "K", "192.0.2.200", true,
	    t + 904));
	/* Only this name, only this network. */
	assert_false(is_auth_lockout_locked(lo, &s, "other", "192.0.2.1",
	    true, t + 904));
	assert_false(is_auth_lockout_locked(lo, &s, "k", "192.0.3.1", true,
	    t + 904));
	assert_false(is_auth_lockout_locked(lo, &s, "k", "192.0.2.1", true,
	    t + 903 + 900));
	/* The next lock of the same pair lasts twice as long. */
	for (int i = 0; i < 3; i++)
		auth_lockout_failed(lo, &s, "k", "192.0.2.1", t + 1900 + i,
		    &until);
	assert_true(is_auth_lockout_locked(lo, &s, "k", "192.0.2.1", true,
	    t + 1902 + 1799));
	assert_false(is_auth_lockout_locked(lo, &s, "k", "192.0.2.1", true,
	    t + 1902 + 1800));
	auth_lockout_free(&lo);
}

static void
test_auth_lockout_networks_are_slash24_and_slash64(void **state)
{
	unsigned char a[AUTH_NETWORK_LEN], b[AUTH_NETWORK_LEN];
	size_t na, nb;

	(void)state;
	na = auth_lockout_network("192.0.2.1", 24, 64, a);
	nb = auth_lockout_network("::ffff:192.0.2.254", 24, 64, b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	nb = auth_lockout_network("192.0.3.1", 24, 64, b);
	assert_memory_not_equal(a, b, na);
	na = auth_lockout_network("2001:db8:1:2::1", 24, 64, a);
	nb = auth_lockout_network("2001:db8:1:2:ffff:ffff:ffff:ffff", 24, 64,
	    b);
	assert_int_equal(na, 17);
	assert_memory_equal(a, b, na);
	nb = auth_lockout_network("2001:db8:1:3::1", 24, 64, b);
	assert_memory_not_equal(a, b, na);
	/* /32 keeps every IPv4 address apart. */
	na = auth_lockout_network("192.0.2.1", 32, 64, a);
	nb = auth_lockout_network("192.0.2.2", 32, 64, b);
	assert_memory_not_equal(a, b, na);
}

/* Network-wide lock: password spraying from one network. */
static void
test_auth_lockout_network_after_many_names(void **state)
{
	struct auth_lockout *lo = auth_lockout_new();
	struct auth_settings s;
	time_t t = 1000000, until;
	char name[32];

	(void)state;
	lockout_settings(&s);
	s.lockout_network_failures = 5;
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		auth_lockout_failed(lo, &s, name, "2001:db8::1", t, &until);
	}
	assert_true(is_auth_lockout_locked(lo, &s, "fresh", "2001:db8::2",
	    true, t));
	assert_false(is_auth_lockout_locked(lo, &s, "fresh",
	    "2001:db8:0:1::1", true, t));
	auth_lockout_free(&lo);
}

/* A flood of failures never takes a locked entry, even when the table
 * fills with locks. */
static void
test_auth_lockout_never_evicts_a_locked_entry(void **state)
{
	struct auth_lockout *lo = auth_lockout_new();
	struct auth_settings s;
	time_t t = 1000000, until;
	char name[32];

	(void)state;
	lockout_settings(&s);
	s.lockout_failures = 1;		/* every failure locks its pair */
	s.lockout_network_failures = 1000000;
	s.lockout_networks = 16;
	auth_lockout_failed(lo, &s, "victim", "203.0.113.5", t, &until);
	assert_true(is_auth_lockout_locked(lo, &s, "victim", "203.0.113.5",
	    true, t));
	for (int i = 0; i < 40000; i++) {
		char peer[32];

		snprintf(name, sizeof(name), "flood%d", i);
		snprintf(peer, sizeof(peer), "198.51.%d.1", i % 200);
		auth_lockout_failed(lo, &s, name, peer, t + 1, &until);
	}
	assert_true(is_auth_lockout_locked(lo, &s, "victim", "203.0.113.5",
	    true, t + 2));
	assert_true(is_auth_lockout_locked(lo, &s, "flood0", "198.51.0.1",
	    true, t + 2));
	auth_lockout_free(&lo);
}

/* The SCRAM salt of an unknown name comes from DATA/auth.secret (mode
 * 0600): stable across restarts, different per data directory, not the
 * public constant of old. */
static void
test_auth_scram_fake_salt_from_the_secret(void **state)
{
	struct fixture *f = *state;
	struct auth_settings as;
	struct auth *again;
	char *p = xasprintf("%s/auth.secret", f->dir), e[256];
	char *s1, *s2, *old64;
	unsigned i1, i2;
	unsigned char old[AUTH_SHA256_LEN];
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	auth_scram_fake(f->auth, "nobody@example.test", &s1, &i1);
	assert_int_equal(i1, 4096);
	assert_int_equal(strlen(s1), 24);	/* 16 bytes, as real salts */
	auth_hmac_sha256("postern-scram", 13, "nobody@example.test", 19, old);
	old64 = base64_encode(old, 16, false);
	assert_string_not_equal(s1, old64);
	auth_settings_default(&as);
	as.data_dir = f->dir;
	again = auth_new(f->store, &as, e, sizeof(e));
	assert_non_null(again);
	auth_scram_fake(again, "Nobody@Example.test", &s2, &i2);
	assert_string_equal(s1, s2);
	free(s2);
	auth_free(&again);
	as.data_dir = NULL;
	again = auth_new(f->store, &as, e, sizeof(e));
	auth_scram_fake(again, "nobody@example.test", &s2, &i2);
	assert_string_not_equal(s1, s2);
	auth_free(&again);
	free(s1);
	free(s2);
	free(old64);
	free(p);
}

/* ---- JWT -------------------------------------------------------------- */

static char *
b64url_json(const char *json)
{
	return base64_encode(json, strlen(json), true);
}

/* Signs header.claims with key (ES256: raw r||s). */
static char *
jwt_sign(EVP_PKEY *key, bool is_ec, const char *header, const char *claims)
{
	char *h = b64url_json(header), *c = b64url_json(claims);
	char *signing = xasprintf("%s.%s", h, c), *sig64, *token;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[512], raw[64];
	size_t siglen = sizeof(sig);

	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen,
	    (unsigned char *)signing, strlen(signing)), 1);
	if (is_ec) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		const BIGNUM *r, *s;

		ECDSA_SIG_get0(es, &r, &s);
		BN_bn2binpad(r, raw, 32);
		BN_bn2binpad(s, raw + 32, 32);
		ECDSA_SIG_free(es);
		sig64 = base64_encode(raw, 64, true);
	} else {
		sig64 = base64_encode(sig, siglen, true);
	}
	token = xasprintf("%s.%s", signing, sig64);
	EVP_MD_CTX_free(md);
	free(h);
	free(c);
	free(signing);
	free(sig64);
	return token;
}

static char *
bn_b64url(EVP_PKEY *key, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char buf[512];
	int n;
	char *out;

	assert_int_equal(EVP_PKEY_get_bn_param(key, param, &bn), 1);
	n = BN_bn2bin(bn, buf);
	out = base64_encode(buf, (size_t)n, true);
	BN_free(bn);
	return out;
}

static void
test_auth_jwt_rs256_and_es256(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	char *n = bn_b64url(rsa, OSSL_PKEY_PARAM_RSA_N);
	char *e = bn_b64url(rsa, OSSL_PKEY_PARAM_RSA_E);
	char *x = bn_b64url(ec, OSSL_PKEY_PARAM_EC_PUB_X);
	char *y = bn_b64url(ec, OSSL_PKEY_PARAM_EC_PUB_Y);
	char *jwks_path = xasprintf("%s/jwks.json", f->dir);
	FILE *fp = fopen(jwks_path, "w");
	struct auth_settings as;
	struct auth *a;
	char err[256], claims[512], *tok, *sub;
	time_t now = time(NULL);
	struct auth_conf *c;

	(void)state;
	fprintf(fp, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"%s\","
	    "\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}]}", n, e, x, y);
	fclose(fp);
	auth_settings_default(&as);
	as.oauth_jwks_file = jwks_path;
	as.oauth_issuer = "https://issuer.test";
	as.oauth_audience = "mail";
	/* OAuth without an issuer or an audience is refused. */
	as.oauth_issuer = NULL;
	assert_null(auth_new(f->store, &as, err, sizeof(err)));
	assert_non_null(strstr(err, "oauth_issuer"));
	as.oauth_issuer = "https://issuer.test";
	as.oauth_audience = NULL;
	assert_null(auth_new(f->store, &as, err, sizeof(err)));
	as.oauth_audience = "mail";
	a = auth_new(f->store, &as, err, sizeof(err));
	assert_non_null(a);
	c = auth_conf_ref(a);

	/* The email claim names the user only when verified. */
	snprintf(claims, sizeof(claims), "{\"iss\":\"https://issuer.test\","
	    "\"aud\":\"mail\",\"exp\":%lld,\"email\":\"user@example.test\"}",
	    (long long)now + 600);
	tok = jwt_sign(rsa, false, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims);
	assert_null(auth_jwt_subject(c, tok, now));
	free(tok);
	snprintf(claims, sizeof(claims), "{\"iss\":\"https://issuer.test\","
	    "\"aud\":\"mail\",\"exp\":%lld,\"email\":\"user@example.test\","
	    "\"email_verified\":false,\"sub\":\"user@example.test\"}",
	    (long long)now + 600);
	tok = jwt_sign(rsa, false, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims);
	assert_null(auth_jwt_subject(c, tok, now));
	free(tok);
	snprintf(claims, sizeof(claims), "{\"iss\":\"https://issuer.test\","
	    "\"aud\":\"mail\",\"exp\":%lld,\"email\":\"user@example.test\","
	    "\"email_verified\":true}", (long long)now + 600);
	tok = jwt_sign(rsa, false, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims);
	sub = auth_jwt_subject(c, tok, now);
	assert_non_null(sub);
	assert_string_equal(sub, "user@example.test");
	free(sub);
	/* A flipped signature byte fails. */
	tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
	assert_null(auth_jwt_subject(c, tok, now));
	free(tok);

	tok = jwt_sign(ec, true, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims);
	sub = auth_jwt_subject(c, tok, now);
	assert_non_null(sub);
	free(sub);
	/* Expired. */
	assert_null(auth_jwt_subject(c, tok, now + 3600));
	free(tok);

	snprintf(claims, sizeof(claims), "{\"iss\":\"https://issuer.test\","
	    "\"aud\":\"other\",\"exp\":%lld,\"sub\":\"user@example.test\"}",
	    (long long)now + 600);
	tok = jwt_sign(ec, true, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims);
	assert_null(auth_jwt_subject(c, tok, now));
	free(tok);
	/* alg none is never accepted. */
	tok = xasprintf("%s.%s.", "eyJhbGciOiJub25lIn0", "e30");
	assert_null(auth_jwt_subject(c, tok, now));
	free(tok);

	auth_conf_unref(a, &c);
	auth_free(&a);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	free(n);
	free(e);
	free(x);
	free(y);
	free(jwks_path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_sha512_crypt_vector_verifies),
		cmocka_unit_test(test_auth_sha256_crypt_vector_verifies),
		cmocka_unit_test(test_auth_bcrypt_vector_verifies),
		cmocka_unit_test(test_auth_new_hash_is_yescrypt_and_verifies),
		cmocka_unit_test(test_auth_unknown_scheme_refused),
		cmocka_unit_test(test_auth_scram_rfc7677_vector),
		cmocka_unit_test(test_auth_scram_secret_has_rfc5803_form),
		cmocka_unit_test(test_auth_failure_delay_grows_and_caps),
		cmocka_unit_test_setup_teardown(
		    test_auth_login_right_and_wrong_password, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_login_protocol_switch_off, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_lockout_after_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_scram_exchange_succeeds, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_scram_wrong_password_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_no_mechanism_before_tls,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_plain_exchange,
		    setup, teardown),
		cmocka_unit_test(test_auth_failures_counted_in_window),
		cmocka_unit_test(
		    test_auth_lockout_networks_are_slash24_and_slash64),
		cmocka_unit_test(test_auth_lockout_network_after_many_names),
		cmocka_unit_test(test_auth_lockout_never_evicts_a_locked_entry),
		cmocka_unit_test_setup_teardown(
		    test_auth_scram_gs2_header_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_unknown_name_locks_like_an_account, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_auth_scram_fake_salt_from_the_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_jwt_rs256_and_es256,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
