/*
 * tls_key: the private-key operations postern needs besides TLS, kept
 * beside it because the net layer owns OpenSSL (STYLE.md): DKIM keys
 * (RFC 6376 rsa-sha256, RFC 8463 ed25519-sha256) made, loaded and used
 * to sign. (The DKIM body hash is auth's SHA-256: auth/auth.h.)
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/base64.h"
#include "lib/util.h"

struct net_key {
	EVP_PKEY *pkey;
	enum net_key_type type;
};

static void
ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(err, errlen, "%s: %s", what, e != 0 ?
	    ERR_reason_error_string(e) : "unknown error");
	ERR_clear_error();
}

/* The public half as DKIM publishes it (RFC 6376 §3.6.1 p=): the DER
 * SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519 (RFC 8463
 * §4.2), in base64. */
static char *
public_b64(EVP_PKEY *pkey, enum net_key_type type)
{
	unsigned char raw[64], *der = NULL;
	size_t len = sizeof(raw);
	char *b64;
	int n;

	if (type == NET_KEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1)
			return NULL;
		return base64_encode(raw, len, false);
	}
	n = i2d_PUBKEY(pkey, &der);
	if (n <= 0)
		return NULL;
	b64 = base64_encode(der, (size_t)n, false);
	OPENSSL_free(der);
	return b64;
}

int
net_key_generate(enum net_key_type type, const char *path, char **pub_out,
    char *err, size_t errlen)
{
	EVP_PKEY *pkey = type == NET_KEY_ED25519 ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	FILE *f;
	int fd, rc = -1;

	*pub_out = NULL;
	if (pkey == NULL) {
		ssl_error(err, errlen, "cannot generate a key");
		return -1;
	}
	/* A new file only: never through a link planted at path. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		ssl_error(err, errlen, "cannot write the key");
	else if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if ((*pub_out = public_b64(pkey, type)) == NULL)
		ssl_error(err, errlen, "cannot encode the public key");
	else
		rc = 0;
	fclose(f);
	EVP_PKEY_free(pkey);
	return rc;
}

struct net_key *
net_key_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct net_key *k;
	EVP_PKEY *pkey;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL) {
		ssl_error(err, errlen, path);
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		k->type = NET_KEY_ED25519;
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->type = NET_KEY_RSA;
	} else {
		snprintf(err, errlen, "%s: neither an RSA nor an Ed25519 key",
		    path);
		net_key_free(&k);
		return NULL;
	}
	return k;
}

enum net_key_type
net_key_type_of(const struct net_key *k)
{
	return k->type;
}

char *
net_key_public_b64(const struct net_key *k)
{
	return public_b64(k->pkey, k->type);
}

void
net_key_free(struct net_key **kp)
{
	if (*kp == NULL)
		return;
	EVP_PKEY_free((*kp)->pkey);
	free(*kp);
	*kp = NULL;
}

int
net_key_sign(const struct net_key *k, const void *data, size_t len,
    unsigned char **sig_out, size_t *len_out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char hash[32];
	const void *in = data;
	size_t inlen = len, siglen = 0;
	unsigned char *sig = NULL;
	int rc = -1;

	*sig_out = NULL;
	if (ctx == NULL)
		return -1;
	if (k->type == NET_KEY_ED25519) {
		/* RFC 8463 §3: PureEdDSA over the SHA-256 of the data. */
		if (EVP_Digest(data, len, hash, NULL, EVP_sha256(), NULL) != 1)
			goto out;
		in = hash;
		inlen = sizeof(hash);
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
			goto out;
	} else if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	    k->pkey) != 1) {
		goto out;
	}
	if (EVP_DigestSign(ctx, NULL, &siglen, in, inlen) != 1)
		goto out;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, in, inlen) != 1) {
		free(sig);
		goto out;
	}
	*sig_out = sig;
	*len_out = siglen;
	rc = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}
