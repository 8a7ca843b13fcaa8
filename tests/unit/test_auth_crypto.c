/*
 * Unit tests for postern's one SHA-256 (auth_crypto.c, auth/auth.h), which
 * SCRAM and the DKIM body hash share: the FIPS 180-2 test vectors, at once
 * and in steps of every size, give the published digests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

static void
hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Hashes in at once, then fed `step` bytes at a time; both must be want. */
static void
expect_sha256(const char *in, size_t n, const char *want)
{
	unsigned char d[AUTH_SHA256_LEN];
	char h[2 * AUTH_SHA256_LEN + 1];

	auth_sha256(in, n, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, want);
	for (size_t step = 1; step <= 65; step += 16) {
		struct auth_sha256 *s = auth_sha256_new();

		for (size_t o = 0; o < n; o += step)
			auth_sha256_update(s, in + o, n - o < step ? n - o : step);
		auth_sha256_update(s, "", 0);
		auth_sha256_final(&s, d);
		assert_null(s);
		hex(d, sizeof(d), h);
		assert_string_equal(h, want);
	}
}

static void
test_auth_sha256_fips_180_2_vectors(void **state)
{
	static const char two_blocks[] =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char *million = malloc(1000000);

	(void)state;
	expect_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	expect_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	expect_sha256(two_blocks, strlen(two_blocks),
	    "248d6a61d20638b8e5c026930c3e6039"
	    "a33ce45964ff2167f6ecedd419db06c1");
	memset(million, 'a', 1000000);
	expect_sha256(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_sha256_fips_180_2_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
