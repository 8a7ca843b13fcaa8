/*
 * tls_acme: the OpenSSL side of ACME (RFC 8555; src/acme is the client):
 * the account and certificate keys (P-256), JWS signatures (ES256, RFC
 * 7518 §3.4), the JWK thumbprint (RFC 7638), the CSR, the certificate
 * the server is given, and the answers to challenges: HTTP-01 (RFC 8555
 * §8.3, served by src/http) and TLS-ALPN-01 (RFC 8737, answered during
 * the handshake by the callbacks of tls.c).
 *
 * The state here is the process's: one ACME certificate served on every
 * TLS listener, one set of pending challenges. Every thread reads it under
 * acme_mu; the ACME thread replaces it.
 */
#include "net/net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "lib/util.h"

#define ACME_TLS_ALPN "acme-tls/1"
/* One challenge per name of the certificate being ordered. */
#define ACME_MAX_CHALLENGES NET_ACME_NAMES_MAX

struct net_acme_key {
	EVP_PKEY *pkey;
};

struct http01 {
	char *token;
	char *keyauth;
};

struct tlsalpn01 {
	char *name;
	X509 *cert;
	EVP_PKEY *pkey;
};

static pthread_mutex_t acme_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *acme_ctx;		/* the ACME certificate, or NULL */
static struct http01 http01s[ACME_MAX_CHALLENGES];
static size_t nhttp01;
static struct tlsalpn01 tlsalpn01s[ACME_MAX_CHALLENGES];
static size_t ntlsalpn01;

static void
ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e == 0 ? NULL : ERR_SYSTEM_ERROR(e) ?
	    strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);

	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what,
	    reason != NULL ? reason : "unknown error");
}

static EVP_PKEY *
p256_new(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Writes data to path, mode 0600, through a temporary name and a rename
 * so that a reader sees the old file or the new one whole. */
static int
file_write_private(const char *path, const void *data, size_t len,
    char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd;
	const char *p = data;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}

static char *
pkey_pem(EVP_PKEY *pkey, size_t *len_out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (b == NULL || PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0,
	    NULL, NULL) != 1) {
		BIO_free(b);
		return NULL;
	}
	n = BIO_get_mem_data(b, &data);
	out = xmalloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len_out = (size_t)n;
	BIO_free(b);
	return out;
}

struct net_acme_key *
net_acme_key_load(const char *path, bool is_create, char *err,
    size_t errlen)
{
	struct net_acme_key *k;
	EVP_PKEY *pkey = NULL;
	FILE *f = fopen(path, "re");

	if (f != NULL) {
		pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (pkey == NULL) {
			ssl_error(err, errlen, path);
			return NULL;
		}
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
		    EVP_PKEY_get_bits(pkey) != 256) {
			snprintf(err, errlen, "%s: not a P-256 key", path);
			EVP_PKEY_free(pkey);
			return NULL;
		}
	} else if (errno != ENOENT || !is_create) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	} else {
		size_t len;
		char *pem;

		pkey = p256_new();
		if (pkey == NULL) {
			ssl_error(err, errlen, "cannot make a P-256 key");
			return NULL;
		}
		pem = pkey_pem(pkey, &len);
		if (pem == NULL || file_write_private(path, pem, len, err,
		    errlen) < 0) {
			if (pem == NULL)
				ssl_error(err, errlen, path);
			else
				secret_wipe(pem, len);
			free(pem);
			EVP_PKEY_free(pkey);
			return NULL;
		}
		secret_wipe(pem, len);
		free(pem);
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	return k;
}

struct net_acme_key *
net_acme_key_new(void)
{
	struct net_acme_key *k;
	EVP_PKEY *pkey = p256_new();

	if (pkey == NULL)
		panic("cannot make a P-256 key");
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	return k;
}

int
net_acme_key_save(const struct net_acme_key *k, const char *path, char *err,
    size_t errlen)
{
	size_t len;
	char *pem = pkey_pem(k->pkey, &len);
	int rc;

	if (pem == NULL) {
		ssl_error(err, errlen, path);
		return -1;
	}
	rc = file_write_private(path, pem, len, err, errlen);
	secret_wipe(pem, len);
	free(pem);
	return rc;
}

void
net_acme_key_free(struct net_acme_key **kp)
{
	if (*kp == NULL)
		return;
	EVP_PKEY_free((*kp)->pkey);
	free(*kp);
	*kp = NULL;
}

/* The 32-byte big-endian coordinate name of the key, base64url. */
static char *
coord_b64(EVP_PKEY *pkey, const char *name)
{
	BIGNUM *bn = NULL;
	unsigned char bytes[32];
	char *out;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
		panic("P-256 key without %s", name);
	if (BN_bn2binpad(bn, bytes, sizeof(bytes)) != (int)sizeof(bytes))
		panic("P-256 coordinate longer than 32 bytes");
	BN_free(bn);
	out = base64_encode(bytes, sizeof(bytes), true);
	return out;
}

char *
net_acme_key_jwk(const struct net_acme_key *k)
{
	char *x = coord_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X);
	char *y = coord_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y);
	/* RFC 7638 §3.2: the required members only, in lexicographic
	 * order, no white space: this exact text is what the thumbprint
	 * hashes. */
	char *jwk = xasprintf("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
	    "\"y\":\"%s\"}", x, y);

	free(x);
	free(y);
	return jwk;
}

char *
net_acme_sha256_b64(const void *data, size_t len)
{
	unsigned char md[32];

	if (EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1)
		panic("SHA-256 failed");
	return base64_encode(md, sizeof(md), true);
}

char *
net_acme_key_sign(const struct net_acme_key *k, const void *data,
    size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80], raw[64];
	const unsigned char *p = der;
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    k->pkey) != 1 || EVP_DigestSign(md, der, &derlen, data, len) != 1)
		panic("ES256 signing failed");
	EVP_MD_CTX_free(md);
	/* RFC 7518 §3.4: JWS wants R and S as two 32-byte numbers, not
	 * OpenSSL's DER. */
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (sig == NULL)
		panic("ES256 signature is not DER");
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32)
	    != 32)
		panic("ES256 signature too long");
	ECDSA_SIG_free(sig);
	return base64_encode(raw, sizeof(raw), true);
}

char *
net_acme_csr(const struct net_acme_key *k, const char *const *names,
    size_t nnames, char *err, size_t errlen)
{
	X509_REQ *req = X509_REQ_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext;
	unsigned char *der = NULL;
	char *out = NULL;
	int n;

	if (req == NULL || gens == NULL || exts == NULL)
		panic("out of memory");
	X509_REQ_set_version(req, 0);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0);
	for (size_t i = 0; i < nnames; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		ASN1_STRING_set(s, names[i], (int)strlen(names[i]));
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		sk_GENERAL_NAME_push(gens, g);
	}
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	sk_X509_EXTENSION_push(exts, ext);
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_set_pubkey(req, k->pkey) != 1 ||
	    X509_REQ_sign(req, k->pkey, EVP_sha256()) <= 0 ||
	    (n = i2d_X509_REQ(req, &der)) <= 0) {
		ssl_error(err, errlen, "cannot make the CSR");
	} else {
		out = base64_encode(der, (size_t)n, true);
	}
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	return out;
}

static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int
net_acme_cert_info(const char *pem, size_t len, int64_t *not_before_out,
    int64_t *not_after_out, const char *const *names, size_t nnames)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int rc = 0;

	if (b == NULL)
		return -1;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL) {
		ERR_clear_error();
		return -1;
	}
	if (asn1_time_unix(X509_get0_notBefore(x), not_before_out) < 0 ||
	    asn1_time_unix(X509_get0_notAfter(x), not_after_out) < 0)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < nnames; i++) {
		if (X509_check_host(x, names[i], 0,
		    X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1)
			rc = 1;
	}
	X509_free(x);
	return rc;
}

int
net_acme_cert_check(const char *pem, size_t len,
    const struct net_acme_key *k, const char *const *names, size_t nnames,
    char *err, size_t errlen)
{
	BIO *b;
	X509 *x;
	GENERAL_NAMES *gens;
	int rc = 0;

	if (len > INT_MAX || (b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errlen, "the chain is not PEM");
		return -1;
	}
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL) {
		ERR_clear_error();
		snprintf(err, errlen, "the chain holds no certificate");
		return -1;
	}
	/* The CSR carried our public key; a certificate for another key
	 * could never be served (and would replace a working pair on disk
	 * with a broken one). */
	if (X509_check_private_key(x, k->pkey) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "the certificate is not for the key of "
		    "the CSR");
		X509_free(x);
		return -1;
	}
	/* RFC 8555 §7.4: the certificate is for the identifiers of the
	 * order; a name we did not ask for would make this certificate win
	 * SNI (tls.c) over one configured for that name. */
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int dlen;
		bool is_ours = false;

		if (g->type != GEN_DNS) {
			snprintf(err, errlen, "the certificate names a "
			    "non-DNS subject alternative name");
			rc = -1;
			break;
		}
		d = ASN1_STRING_get0_data(g->d.dNSName);
		dlen = ASN1_STRING_length(g->d.dNSName);
		for (size_t j = 0; j < nnames && !is_ours; j++)
			is_ours = strlen(names[j]) == (size_t)dlen &&
			    strncasecmp(names[j], (const char *)d,
			    (size_t)dlen) == 0;
		if (!is_ours) {
			snprintf(err, errlen, "the certificate names %.*s, "
			    "which was not ordered", dlen > 255 ? 255 : dlen,
			    (const char *)d);
			rc = -1;
		}
	}
	GENERAL_NAMES_free(gens);
	X509_free(x);
	return rc;
}

int
net_acme_cert_install(const char *cert_path, const char *key_path,
    char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *old;

	if (ctx == NULL) {
		ssl_error(err, errlen, "cannot create a TLS context");
		return -1;
	}
	tls_ctx_setup(ctx);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		ssl_error(err, errlen, cert_path);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, key_path);
		SSL_CTX_free(ctx);
		return -1;
	}
	pthread_mutex_lock(&acme_mu);
	old = acme_ctx;
	acme_ctx = ctx;
	pthread_mutex_unlock(&acme_mu);
	/* Handshakes that took the old context hold their own reference
	 * (SSL_set_SSL_CTX); this one is ours. */
	SSL_CTX_free(old);
	return 0;
}

bool
tls_acme_ctx_use(SSL *ssl, const char *name)
{
	bool is_used = false;

	pthread_mutex_lock(&acme_mu);
	if (acme_ctx != NULL && (name == NULL || X509_check_host(
	    SSL_CTX_get0_certificate(acme_ctx), name, 0, 0, NULL) == 1)) {
		SSL_set_SSL_CTX(ssl, acme_ctx);
		is_used = true;
	}
	pthread_mutex_unlock(&acme_mu);
	return is_used;
}

struct ssl_ctx_st *
tls_acme_ctx_get(const char *name)
{
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&acme_mu);
	if (acme_ctx != NULL && (name == NULL || X509_check_host(
	    SSL_CTX_get0_certificate(acme_ctx), name, 0, 0, NULL) == 1)) {
		ctx = acme_ctx;
		SSL_CTX_up_ref(ctx);
	}
	pthread_mutex_unlock(&acme_mu);
	return ctx;
}

int
net_acme_http01_set(const char *token, const char *keyauth, char *err,
    size_t errlen)
{
	int rc = -1;

	pthread_mutex_lock(&acme_mu);
	if (nhttp01 < ACME_MAX_CHALLENGES) {
		http01s[nhttp01].token = xstrdup(token);
		http01s[nhttp01].keyauth = xstrdup(keyauth);
		nhttp01++;
		rc = 0;
	}
	pthread_mutex_unlock(&acme_mu);
	if (rc < 0)
		snprintf(err, errlen, "too many HTTP-01 challenges at once");
	return rc;
}

char *
net_acme_http01_get(const char *token)
{
	char *keyauth = NULL;

	pthread_mutex_lock(&acme_mu);
	for (size_t i = 0; i < nhttp01; i++) {
		if (strcmp(http01s[i].token, token) == 0) {
			keyauth = xstrdup(http01s[i].keyauth);
			break;
		}
	}
	pthread_mutex_unlock(&acme_mu);
	return keyauth;
}

int
net_acme_tlsalpn01_set(const char *name, const char *keyauth, char *err,
    size_t errlen)
{
	X509 *x = X509_new();
	EVP_PKEY *pkey = p256_new();
	unsigned char md[32];
	ASN1_OCTET_STRING *digest = ASN1_OCTET_STRING_new();
	ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	unsigned char *der = NULL;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	X509_EXTENSION *ext = NULL;
	int derlen, rc = -1;

	if (x == NULL || pkey == NULL || digest == NULL || value == NULL ||
	    oid == NULL || gens == NULL || g == NULL || s == NULL)
		panic("out of memory");
	if (EVP_Digest(keyauth, strlen(keyauth), md, NULL, EVP_sha256(),
	    NULL) != 1)
		panic("SHA-256 failed");
	/* RFC 8737 §3: the extension's value is the DER of an OCTET STRING
	 * holding SHA-256 of the key authorization; the extension is
	 * critical, the certificate names the one identifier. */
	ASN1_OCTET_STRING_set(digest, md, sizeof(md));
	derlen = i2d_ASN1_OCTET_STRING(digest, &der);
	ASN1_OCTET_STRING_set(value, der, derlen);
	OPENSSL_free(der);
	ASN1_STRING_set(s, name, (int)strlen(name));
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	sk_GENERAL_NAME_push(gens, g);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pkey);
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1 ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value)) == NULL
	    || X509_add_ext(x, ext, -1) != 1 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		ssl_error(err, errlen, "cannot make the TLS-ALPN-01 "
		    "certificate");
		X509_free(x);
		EVP_PKEY_free(pkey);
	} else {
		pthread_mutex_lock(&acme_mu);
		if (ntlsalpn01 < ACME_MAX_CHALLENGES) {
			tlsalpn01s[ntlsalpn01].name = xstrdup(name);
			tlsalpn01s[ntlsalpn01].cert = x;
			tlsalpn01s[ntlsalpn01].pkey = pkey;
			ntlsalpn01++;
			rc = 0;
		} else {
			X509_free(x);
			EVP_PKEY_free(pkey);
			snprintf(err, errlen, "too many TLS-ALPN-01 "
			    "challenges at once");
		}
		pthread_mutex_unlock(&acme_mu);
	}
	X509_EXTENSION_free(ext);
	GENERAL_NAMES_free(gens);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(digest);
	ASN1_OCTET_STRING_free(value);
	return rc;
}

void
net_acme_challenges_clear(void)
{
	pthread_mutex_lock(&acme_mu);
	for (size_t i = 0; i < nhttp01; i++) {
		free(http01s[i].token);
		free(http01s[i].keyauth);
	}
	nhttp01 = 0;
	for (size_t i = 0; i < ntlsalpn01; i++) {
		free(tlsalpn01s[i].name);
		X509_free(tlsalpn01s[i].cert);
		EVP_PKEY_free(tlsalpn01s[i].pkey);
	}
	ntlsalpn01 = 0;
	pthread_mutex_unlock(&acme_mu);
}

/* RFC 8737 §3: a client offering "acme-tls/1" for a name we have a
 * TLS-ALPN-01 challenge for gets the challenge's certificate and that
 * protocol; anyone else gets no ALPN answer (we speak no other protocol
 * by name) and the usual certificate. */
int
tls_acme_alpn_select(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned inlen,
    void *arg)
{
	static const unsigned char proto[] = ACME_TLS_ALPN;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	bool is_offered = false;
	int rc = SSL_TLSEXT_ERR_NOACK;

	(void)arg;
	for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
		if (in[i] == sizeof(proto) - 1 && i + 1u + in[i] <= inlen &&
		    memcmp(in + i + 1, proto, sizeof(proto) - 1) == 0)
			is_offered = true;
	}
	if (!is_offered || name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	pthread_mutex_lock(&acme_mu);
	for (size_t i = 0; i < ntlsalpn01; i++) {
		if (strcasecmp(tlsalpn01s[i].name, name) != 0)
			continue;
		if (SSL_use_certificate(ssl, tlsalpn01s[i].cert) == 1 &&
		    SSL_use_PrivateKey(ssl, tlsalpn01s[i].pkey) == 1) {
			*out = proto;
			*outlen = sizeof(proto) - 1;
			rc = SSL_TLSEXT_ERR_OK;
		} else {
			ERR_clear_error();
			rc = SSL_TLSEXT_ERR_ALERT_FATAL;
		}
		break;
	}
	pthread_mutex_unlock(&acme_mu);
	return rc;
}
