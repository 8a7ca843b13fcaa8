/*
 * Unit tests for net/tls_acme.c as a hostile or careless ACME CA would
 * exercise it: every name of a full-size order gets its HTTP-01 answer,
 * and a chain is refused when its key is not the CSR's or it names what
 * was not ordered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/net.h"

/* An order of NET_ACME_NAMES_MAX names (25 domains) has that many HTTP-01
 * challenges pending at once; each must be answered (the CA fails the
 * whole order on one 404). */
static void
test_http01_every_name_of_a_full_order(void **state)
{
	char token[64], keyauth[128], err[256];

	(void)state;
	for (int i = 0; i < NET_ACME_NAMES_MAX; i++) {
		snprintf(token, sizeof(token), "token%04dxxxxxxxxxxxxxxxxx", i);
		snprintf(keyauth, sizeof(keyauth), "%s.thumb", token);
		assert_int_equal(net_acme_http01_set(token, keyauth, err,
		    sizeof(err)), 0);
	}
	for (int i = 0; i < NET_ACME_NAMES_MAX; i++) {
		char *got;

		snprintf(token, sizeof(token), "token%04dxxxxxxxxxxxxxxxxx", i);
		snprintf(keyauth, sizeof(keyauth), "%s.thumb", token);
		got = net_acme_http01_get(token);
		assert_non_null(got);
		assert_string_equal(got, keyauth);
		free(got);
	}
	/* One more than a certificate may hold is refused, not dropped
	 * silently. */
	assert_int_equal(net_acme_http01_set("onetoomanyxxxxxxxxxxxxxx", "x",
	    err, sizeof(err)), -1);
	assert_null(net_acme_http01_get("onetoomanyxxxxxxxxxxxxxx"));
	net_acme_challenges_clear();
	assert_null(net_acme_http01_get("token0000xxxxxxxxxxxxxxxxx"));
}

/* The key of k, through its PEM (struct net_acme_key is opaque). */
static EVP_PKEY *
pkey_of(const struct net_acme_key *k)
{
	char path[] = "/tmp/acme_net_key.XXXXXX";
	char err[256];
	int fd = mkstemp(path);
	EVP_PKEY *pkey;
	FILE *f;

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(net_acme_key_save(k, path, err, sizeof(err)), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	unlink(path);
	assert_non_null(pkey);
	return pkey;
}

/* A PEM certificate for the public key of pub, signed by signer, with
 * the DNS names (comma-separated, as openssl's "DNS:a,DNS:b"). */
static char *
cert_pem(EVP_PKEY *pub, EVP_PKEY *signer, const char *san, size_t *len_out)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"ca", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pub);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len_out = (size_t)n;
	BIO_free(b);
	X509_free(x);
	return out;
}

static void
test_cert_check(void **state)
{
	const char *names[] = { "mail.example.test", "mta-sts.example.test" };
	struct net_acme_key *ours = net_acme_key_new();
	struct net_acme_key *other = net_acme_key_new();
	EVP_PKEY *ours_pk = pkey_of(ours), *other_pk = pkey_of(other);
	char err[256], *pem;
	size_t len;
	int64_t nb, na;

	(void)state;
	/* What a CA should send: our key, the names ordered. */
	pem = cert_pem(ours_pk, other_pk,
	    "DNS:mail.example.test,DNS:MTA-STS.example.test", &len);
	assert_int_equal(net_acme_cert_check(pem, len, ours, names, 2, err,
	    sizeof(err)), 0);
	free(pem);
	/* The names are covered, but the key is another's: it would never
	 * load next to ours. */
	pem = cert_pem(other_pk, other_pk,
	    "DNS:mail.example.test,DNS:mta-sts.example.test", &len);
	assert_int_equal(net_acme_cert_info(pem, len, &nb, &na, names, 2), 0);
	assert_int_equal(net_acme_cert_check(pem, len, ours, names, 2, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "key"));
	free(pem);
	/* Our key and our names, and one more (a wildcard): refused. */
	pem = cert_pem(ours_pk, other_pk,
	    "DNS:mail.example.test,DNS:mta-sts.example.test,DNS:*.other.test",
	    &len);
	assert_int_equal(net_acme_cert_info(pem, len, &nb, &na, names, 2), 0);
	assert_int_equal(net_acme_cert_check(pem, len, ours, names, 2, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "*.other.test"));
	free(pem);
	/* An address among the names: refused. */
	pem = cert_pem(ours_pk, other_pk,
	    "DNS:mail.example.test,DNS:mta-sts.example.test,IP:192.0.2.1",
	    &len);
	assert_int_equal(net_acme_cert_check(pem, len, ours, names, 2, err,
	    sizeof(err)), -1);
	free(pem);
	/* Not a certificate at all. */
	assert_int_equal(net_acme_cert_check("junk", 4, ours, names, 2, err,
	    sizeof(err)), -1);
	EVP_PKEY_free(ours_pk);
	EVP_PKEY_free(other_pk);
	net_acme_key_free(&ours);
	net_acme_key_free(&other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http01_every_name_of_a_full_order),
		cmocka_unit_test(test_cert_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
