/*
 * authn_crypto: the OpenSSL of message authentication (DESIGN.md,
 * Dependencies): SHA-256 of DKIM's canonical data and the signature
 * check with a DNS-published public key, RSA (RFC 6376 §3.3) or Ed25519
 * (RFC 8463).
 */
#include "authn/authn_int.h"

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/util.h"

struct authn_sha256 {
	EVP_MD_CTX *ctx;
};

struct authn_sha256 *
authn_sha256_new(void)
{
	struct authn_sha256 *h = xcalloc(1, sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(),
	    NULL) != 1)
		panic("authn_sha256_new: OpenSSL cannot start SHA-256");
	return h;
}

void
authn_sha256_update(void *arg, const void *data, size_t len)
{
	struct authn_sha256 *h = arg;

	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		panic("authn_sha256_update: OpenSSL failed");
}

void
authn_sha256_final(struct authn_sha256 **hp, unsigned char out[32])
{
	unsigned n = 32;

	if (EVP_DigestFinal_ex((*hp)->ctx, out, &n) != 1)
		panic("authn_sha256_final: OpenSSL failed");
	authn_sha256_free(hp);
}

void
authn_sha256_free(struct authn_sha256 **hp)
{
	if (*hp == NULL)
		return;
	EVP_MD_CTX_free((*hp)->ctx);
	free(*hp);
	*hp = NULL;
}

static EVP_PKEY *
key_read(enum authn_key_type type, const unsigned char *key, size_t keylen)
{
	const unsigned char *p = key;
	EVP_PKEY *pkey;

	if (type == AUTHN_KEY_ED25519)
		return keylen == 32 ? EVP_PKEY_new_raw_public_key(
		    EVP_PKEY_ED25519, NULL, key, keylen) : NULL;
	/* RFC 6376 §3.6.1: SubjectPublicKeyInfo; some publish the bare
	 * RSAPublicKey (PKCS#1), which verifiers accept as well. */
	pkey = d2i_PUBKEY(NULL, &p, (long)keylen);
	if (pkey != NULL && p != key + keylen) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (pkey == NULL) {
		p = key;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)keylen);
		if (pkey != NULL && p != key + keylen) {
			EVP_PKEY_free(pkey);
			return NULL;
		}
	}
	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

enum authn_verify_rc
authn_crypto_verify(enum authn_key_type type, const unsigned char *key,
    size_t keylen, unsigned max_bits, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen, unsigned *bits_out)
{
	EVP_PKEY *pkey = key_read(type, key, keylen);
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	enum authn_verify_rc rc = AUTHN_VERIFY_KEY;
	int bits;

	*bits_out = 0;
	if (pkey == NULL)
		goto out;
	bits = EVP_PKEY_get_bits(pkey);
	*bits_out = bits > 0 ? (unsigned)bits : 0;
	if (type == AUTHN_KEY_RSA && *bits_out > max_bits) {
		rc = AUTHN_VERIFY_KEY_SIZE;
		goto out;
	}
	rc = AUTHN_VERIFY_BAD;
	if (type == AUTHN_KEY_ED25519) {
		mctx = EVP_MD_CTX_new();
		if (mctx == NULL || EVP_DigestVerifyInit(mctx, NULL, NULL,
		    NULL, pkey) != 1)
			goto out;
		if (EVP_DigestVerify(mctx, sig, siglen, hash, 32) == 1)
			rc = AUTHN_VERIFY_OK;
		goto out;
	}
	pctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (pctx == NULL || EVP_PKEY_verify_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1)
		goto out;
	if (EVP_PKEY_verify(pctx, sig, siglen, hash, 32) == 1)
		rc = AUTHN_VERIFY_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	return rc;
}
