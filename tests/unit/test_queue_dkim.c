/*
 * Unit tests for DKIM signing (queue_dkim.c): relaxed canonicalization of
 * header fields and body (RFC 6376 §3.4.2, §3.4.4, the example of
 * §3.4.5), fed whole and one byte at a time, and a signature made with a
 * fresh key that carries the fields a verifier needs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/base64.h"
#include "net/net.h"
#include "queue/queue_int.h"

/* The base64 body hash of text fed in pieces of step bytes. */
static char *
body_hash(const char *text, size_t step)
{
	struct queue_dkim_body b;
	unsigned char h[32];
	size_t len = strlen(text);

	queue_dkim_body_init(&b);
	for (size_t i = 0; i < len; i += step)
		queue_dkim_body_update(&b, text + i,
		    len - i < step ? len - i : step);
	queue_dkim_body_final(&b, h);
	return base64_encode(h, sizeof(h), false);
}

static void
expect_body(const char *text, const char *want)
{
	char *whole = body_hash(text, strlen(text) + 1);
	char *bytes = body_hash(text, 1);

	assert_string_equal(whole, want);
	assert_string_equal(bytes, want);
	free(whole);
	free(bytes);
}

static void
test_queue_dkim_body_relaxed_rfc6376_example(void **state)
{
	(void)state;
	/* §3.4.5: " C \r\nD \t E\r\n\r\n\r\n" is " C\r\nD E\r\n". */
	expect_body(" C \r\nD \t E\r\n\r\n\r\n",
	    "unak6JHq0wL+Q1HP7dW1tjBx9FLA6DffoZ0qrLwbbpo=");
	/* No final CRLF: one is added; trailing whitespace goes. */
	expect_body(" C\r\nD E  ",
	    "unak6JHq0wL+Q1HP7dW1tjBx9FLA6DffoZ0qrLwbbpo=");
	/* An empty body, or one of empty lines only, hashes as empty. */
	expect_body("", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	expect_body("\r\n\r\n  \r\n",
	    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	/* A bare CR ends a line, as on the wire (queue_stuff_feed): the
	 * hash is that of "a\r\nb\r\n". */
	expect_body("a\rb\r\n", "WAVb3Mc3h+uIx4028LSTnpxdwcOtF+JcyFpoM88aDKs=");
	expect_body("a\r\nb\r\n",
	    "WAVb3Mc3h+uIx4028LSTnpxdwcOtF+JcyFpoM88aDKs=");
}

static void
test_queue_dkim_header_relaxed_rfc6376_example(void **state)
{
	char *a, *b;

	(void)state;
	a = authn_dkim_header_relaxed("A: X", 4);
	b = authn_dkim_header_relaxed("B : Y\t\r\n\tZ  ", 12);
	assert_string_equal(a, "a:X");
	assert_string_equal(b, "b:Y Z");
	free(a);
	free(b);
	a = authn_dkim_header_relaxed("Subject:", 8);
	assert_string_equal(a, "subject:");
	free(a);
}

static void
test_queue_dkim_signs_with_a_fresh_key(void **state)
{
	static const char header[] = "From: Alice <alice@a.test>\r\n"
	    "To: bob@b.test\r\n"
	    "Received: not signed\r\n"
	    "Subject: hi\r\n";
	static const char msg[] = "From: Alice <alice@a.test>\r\n"
	    "To: bob@b.test\r\n"
	    "Received: not signed\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "body\r\n";
	unsigned char bh[32];
	struct queue_dkim_body b;
	char path[] = "/tmp/dkimkey.XXXXXX", err[256], *pub, *sig, *sig2;
	struct net_key *key;
	FILE *f;
	int fd;

	(void)state;
	/* A fresh name: net_key_generate writes only a new file (O_EXCL). */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(net_key_generate(NET_KEY_ED25519, path, &pub, err,
	    sizeof(err)), 0);
	/* RFC 8463 §4.2: the raw 32-byte key, 44 characters of base64. */
	assert_int_equal(strlen(pub), 44);
	key = net_key_load(path, err, sizeof(err));
	assert_non_null(key);
	assert_int_equal(net_key_type_of(key), NET_KEY_ED25519);
	queue_dkim_body_init(&b);
	queue_dkim_body_update(&b, "body\r\n", 6);
	queue_dkim_body_final(&b, bh);
	sig = queue_dkim_sign(header, strlen(header), bh, key, "a.test", "s1",
	    1700000000);
	assert_non_null(sig);
	assert_non_null(strstr(sig, "DKIM-Signature: v=1; a=ed25519-sha256; "
	    "c=relaxed/relaxed; d=a.test; s=s1;\r\n\tt=1700000000; "
	    "h=from:subject:to;\r\n\tbh="));
	assert_null(strstr(sig, "received"));
	assert_true(strlen(sig) > 2 &&
	    strcmp(sig + strlen(sig) - 2, "\r\n") == 0);
	/* The same through a file. */
	f = tmpfile();
	fputs(msg, f);
	fflush(f);
	sig2 = queue_dkim_sign_fd(fileno(f), strlen(msg), key, "a.test", "s1",
	    1700000000);
	fclose(f);
	assert_non_null(sig2);
	/* Ed25519 signatures are deterministic: the same bytes. */
	assert_string_equal(sig, sig2);
	free(sig2);
	/* No From, no signature (RFC 6376 §5.4). */
	assert_null(queue_dkim_sign("Subject: x\r\n", 12, bh, key, "a.test",
	    "s1", 1));
	free(sig);
	free(pub);
	net_key_free(&key);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_dkim_body_relaxed_rfc6376_example),
		cmocka_unit_test(
		    test_queue_dkim_header_relaxed_rfc6376_example),
		cmocka_unit_test(test_queue_dkim_signs_with_a_fresh_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
