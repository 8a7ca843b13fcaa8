/*
 * tls: OpenSSL contexts for the configured certificates, SNI, and the
 * bufferevents that carry TLS. TLS 1.2 is the minimum (DESIGN.md,
 * Security posture; RFC 8996 retired 1.0 and 1.1), with forward-secret
 * AEAD suites only.
 */
#include "net/net_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

#define TLS_CIPHERS_TLS12						\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls_set {
	SSL_CTX **ctxs;
	X509 **leafs;		/* the leaf of each context, for SNI */
	size_t n;
};

/* Writes "CONFIG:LINE: key 'KEY': FILE: what: OpenSSL's reason". */
static void
openssl_error(char *err, size_t errlen, const struct config *cfg,
    const struct config_cert *cc, const char *key, const char *what)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e == 0 ? NULL : ERR_SYSTEM_ERROR(e) ?
	    strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
	char section[96];

	ERR_clear_error();
	snprintf(section, sizeof(section), "certificate %s", cc->name);
	snprintf(err, errlen, "%s:%d: key '%s': %s: %s: %s", cfg->path,
	    config_section_line(cfg, section), key,
	    strcmp(key, "key") == 0 ? cc->key_file : cc->cert_file, what,
	    reason != NULL ? reason : "unknown error");
}

/* RFC 6066 §3: the client names the host it wants; we answer with the
 * first certificate that covers it, else the default one. OpenSSL (1.1.1
 * and later) calls this for every ClientHello, with SNI or without. */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_set *set = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	/* The certificate postern got by ACME (tls_acme.c) is the default
	 * one when there is one, and wins for the names it covers. */
	if (name == NULL)
		return tls_acme_ctx_use(ssl, NULL) ? SSL_TLSEXT_ERR_OK :
		    SSL_TLSEXT_ERR_NOACK;
	if (tls_acme_ctx_use(ssl, name))
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 1; i < set->n; i++) {
		if (X509_check_host(set->leafs[i], name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, set->ctxs[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	tls_acme_ctx_use(ssl, NULL);
	return SSL_TLSEXT_ERR_OK;
}

/* What every server context has: TLS 1.2 or later, our suites, buffers
 * released between reads, the TLS-ALPN-01 answer (tls_acme.c). */
int
tls_ctx_setup(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* TLS 1.2: only forward-secret AEAD suites (Mozilla's
	 * "intermediate" profile, RFC 9325 §4.2), no DHE since we set up
	 * no DH parameters. TLS 1.3 keeps OpenSSL's suites, all AEAD. */
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_TLS12) != 1)
		return -1;
	/* Clients pick among our ciphers only the strong ones; the server's
	 * order wins so that old clients do not pull us down. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	/* An idle connection (IMAP IDLE, thousands of them) gives its
	 * record buffers back between reads: about 34 KiB each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* OpenSSL asks the context the servername callback chose, so each
	 * context answers ALPN. */
	SSL_CTX_set_alpn_select_cb(ctx, tls_acme_alpn_select, NULL);
	return 0;
}

static SSL_CTX *
ctx_new(const struct config *cfg, const struct config_cert *cc, char *err,
    size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		openssl_error(err, errlen, cfg, cc, "cert",
		    "cannot create a TLS context");
		return NULL;
	}
	if (tls_ctx_setup(ctx) < 0) {
		openssl_error(err, errlen, cfg, cc, "cert",
		    "cannot set the TLS 1.2 cipher list");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert_file) != 1) {
		openssl_error(err, errlen, cfg, cc, "cert",
		    "cannot load the certificate chain");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cc->key_file,
	    SSL_FILETYPE_PEM) != 1) {
		openssl_error(err, errlen, cfg, cc, "key",
		    "cannot load the private key");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		openssl_error(err, errlen, cfg, cc, "key",
		    "does not match the certificate");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_set *
tls_set_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_set *set = xcalloc(1, sizeof(*set));

	set->ctxs = xcalloc(cfg->ncerts + 1, sizeof(*set->ctxs));
	set->leafs = xcalloc(cfg->ncerts + 1, sizeof(*set->leafs));
	for (size_t i = 0; i < cfg->ncerts; i++) {
		SSL_CTX *ctx = ctx_new(cfg, &cfg->certs[i], err, errlen);

		if (ctx == NULL) {
			tls_set_free(&set);
			return NULL;
		}
		set->ctxs[i] = ctx;
		set->leafs[i] = SSL_CTX_get0_certificate(ctx);
		set->n++;
	}
	if (set->n > 0)
		SSL_CTX_set_tlsext_servername_callback(set->ctxs[0],
		    on_servername);
	if (set->n > 0)
		SSL_CTX_set_tlsext_servername_arg(set->ctxs[0], set);
	return set;
}

int
net_certs_check(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_set *set = tls_set_new(cfg, err, errlen);

	if (set == NULL)
		return -1;
	tls_set_free(&set);
	return 0;
}

bool
has_tls_set_certs(const struct tls_set *set)
{
	return set != NULL && set->n > 0;
}

int
tls_set_sign(struct tls_set *set, const char *host, const void *data,
    size_t len, unsigned char **der_out, size_t *len_out)
{
	SSL_CTX *ctx;
	STACK_OF(X509) *chain = NULL;
	PKCS7 *p7;
	BIO *in;
	unsigned char *der = NULL;
	int n;

	SSL_CTX *acme;

	if (!has_tls_set_certs(set) || len > INT_MAX)
		return -1;
	/* The certificate the handshake would choose: ACME's first. */
	acme = tls_acme_ctx_get(host);
	if (acme == NULL && host != NULL &&
	    (acme = tls_acme_ctx_get(NULL)) != NULL) {
		bool is_other = false;

		for (size_t i = 1; i < set->n && !is_other; i++)
			is_other = X509_check_host(set->leafs[i], host, 0, 0,
			    NULL) == 1;
		if (is_other) {
			SSL_CTX_free(acme);
			acme = NULL;
		}
	}
	ctx = acme != NULL ? acme : set->ctxs[0];
	for (size_t i = 1; acme == NULL && host != NULL && i < set->n; i++) {
		if (X509_check_host(set->leafs[i], host, 0, 0, NULL) == 1) {
			ctx = set->ctxs[i];
			break;
		}
	}
	SSL_CTX_get0_chain_certs(ctx, &chain);
	in = BIO_new_mem_buf(data, (int)len);
	if (in == NULL) {
		SSL_CTX_free(acme);
		return -1;
	}
	/* As `openssl smime -sign -nodetach -binary`: what Apple's
	 * configuration profiles are (the content inside the signature). */
	p7 = PKCS7_sign(SSL_CTX_get0_certificate(ctx),
	    SSL_CTX_get0_privatekey(ctx), chain, in, PKCS7_BINARY);
	BIO_free(in);
	SSL_CTX_free(acme);
	if (p7 == NULL) {
		ERR_clear_error();
		return -1;
	}
	n = i2d_PKCS7(p7, &der);
	PKCS7_free(p7);
	if (n <= 0) {
		ERR_clear_error();
		return -1;
	}
	*der_out = xmalloc((size_t)n);
	memcpy(*der_out, der, (size_t)n);
	*len_out = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

void
tls_set_free(struct tls_set **setp)
{
	struct tls_set *set = *setp;

	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		SSL_CTX_free(set->ctxs[i]);
	free(set->ctxs);
	free(set->leafs);
	free(set);
	*setp = NULL;
}

struct bufferevent *
tls_bev_accept(struct tls_set *set, struct event_base *base,
    evutil_socket_t fd)
{
	SSL *ssl = SSL_new(set->ctxs[0]);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

struct bufferevent *
tls_bev_filter(struct tls_set *set, struct event_base *base,
    struct bufferevent *under)
{
	SSL *ssl = SSL_new(set->ctxs[0]);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_filter_new(base, under, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

const char *
tls_bev_version(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL && SSL_is_init_finished(ssl) ?
	    SSL_get_version(ssl) : NULL;
}

const char *
tls_bev_cipher(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL && SSL_is_init_finished(ssl) ?
	    SSL_get_cipher_name(ssl) : NULL;
}

void
tls_bev_shutdown(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
}
