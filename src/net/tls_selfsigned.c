/*
 * tls_selfsigned: the certificate `postern quickstart` makes so that a new
 * server speaks TLS at once. Clients warn about it; the README says how to
 * replace it with a real one.
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

static X509 *
cert_build(EVP_PKEY *key, const char *const *names, size_t nnames)
{
	X509 *x = X509_new();
	X509_NAME *subject;
	char *san = xstrdup("");
	unsigned char serial[16];
	BIGNUM *bn;
	int ok = 1;

	X509_set_version(x, 2);
	/* RFC 5280 §4.1.2.2: positive, at most 20 octets, unique. */
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		ok = 0;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, key);
	subject = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
	    (const unsigned char *)names[0], -1, -1, 0);
	X509_set_issuer_name(x, subject);
	for (size_t i = 0; i < nnames; i++) {
		char *next = xasprintf("%s%sDNS:%s", san, i ? "," : "",
		    names[i]);

		free(san);
		san = next;
	}
	if (add_ext(x, NID_subject_alt_name, san) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage,
	    "critical,digitalSignature,keyEncipherment") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0)
		ok = 0;
	free(san);
	if (!ok || X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Opens path for writing with mode, replacing it. */
static FILE *
open_for_write(const char *path, mode_t mode, char *err, size_t errlen)
{
	/* A new file only: never through a link planted at path, never
	 * into an existing file whose mode may let others read the key. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	FILE *f;

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
		    strerror(errno));
		return NULL;
	}
	fchmod(fd, mode);
	f = fdopen(fd, "w");
	if (f == NULL)
		close(fd);
	return f;
}

static int
close_synced(FILE *f, const char *path, char *err, size_t errlen)
{
	int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;

	if (fclose(f) != 0)
		rc = -1;
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write: %s", path,
		    strerror(errno));
	return rc;
}

int
tls_selfsigned_write(const char *const *names, size_t nnames,
    const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *x = NULL;
	FILE *f;
	int rc = -1;

	if (nnames == 0)
		panic("tls_selfsigned_write without a name");
	if (key == NULL || (x = cert_build(key, names, nnames)) == NULL) {
		snprintf(err, errlen, "cannot make a certificate: %s",
		    ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	f = open_for_write(key_path, 0600, err, errlen);
	if (f == NULL)
		goto out;
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) {
		fclose(f);
		snprintf(err, errlen, "%s: cannot write the key", key_path);
		goto out;
	}
	if (close_synced(f, key_path, err, errlen) < 0)
		goto out;
	f = open_for_write(cert_path, 0644, err, errlen);
	if (f == NULL)
		goto out;
	if (PEM_write_X509(f, x) != 1) {
		fclose(f);
		snprintf(err, errlen, "%s: cannot write the certificate",
		    cert_path);
		goto out;
	}
	rc = close_synced(f, cert_path, err, errlen);
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
