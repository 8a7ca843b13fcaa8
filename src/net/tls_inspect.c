/*
 * tls_inspect: what `postern doctor` needs to know about certificates,
 * without the caller touching OpenSSL: a PEM chain file judged as a
 * client would judge it (chain to the system's roots, names, days left),
 * and blocking TLS over a socket the caller connected (the doctor's
 * probes of listeners, ours or another server's). Main thread only.
 */
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

/* Days from now to t (negative: past). */
static long
days_until(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (ASN1_TIME_diff(&days, &secs, NULL, t) != 1)
		return 0;
	return days;
}

/* The subjectAltName DNS names (else the CN), comma-separated. */
static void
names_of(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	size_t o = 0;

	buf[0] = '\0';
	if (gens != NULL) {
		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			const unsigned char *s;
			int n;

			if (g->type != GEN_DNS)
				continue;
			s = ASN1_STRING_get0_data(g->d.dNSName);
			n = ASN1_STRING_length(g->d.dNSName);
			if (o + (size_t)n + 3 >= len)
				break;
			o += (size_t)snprintf(buf + o, len - o, "%s%.*s",
			    o > 0 ? ", " : "", n, (const char *)s);
		}
		GENERAL_NAMES_free(gens);
	}
	if (o == 0)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, buf, (int)len);
}

/* Judges leaf with the chain behind it against the system's roots, and
 * those of ca_file (PEM) when it is not NULL. */
static void
judge(X509 *leaf, STACK_OF(X509) *chain, const char *const *names,
    size_t nnames, const char *ca_file, struct net_cert_report *out)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc;

	out->days_left = days_until(X509_get0_notAfter(leaf));
	out->is_not_yet_valid = X509_cmp_current_time(
	    X509_get0_notBefore(leaf)) > 0;
	names_of(leaf, out->names, sizeof(out->names));
	out->names_missing = 0;
	for (size_t i = 0; i < nnames && i < 32; i++) {
		if (X509_check_host(leaf, names[i], strlen(names[i]), 0,
		    NULL) != 1)
			out->names_missing |= 1u << i;
	}
	X509_STORE_set_default_paths(store);
	if (ca_file != NULL && X509_STORE_load_file(store, ca_file) != 1)
		ERR_clear_error();
	X509_STORE_CTX_init(ctx, store, leaf, chain);
	rc = X509_verify_cert(ctx);
	out->is_chain_ok = rc == 1;
	out->verify_error = rc == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
	out->is_self_signed = out->verify_error ==
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	    out->verify_error == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
	snprintf(out->verify_text, sizeof(out->verify_text), "%s",
	    rc == 1 ? "ok" : X509_verify_cert_error_string(out->verify_error));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
}

int
net_cert_file_check(const char *path, const char *const *names,
    size_t nnames, struct net_cert_report *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	STACK_OF(X509) *chain;
	X509 *leaf, *x;

	memset(out, 0, sizeof(*out));
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	leaf = PEM_read_X509(f, NULL, NULL, NULL);
	if (leaf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: no PEM certificate", path);
		return -1;
	}
	chain = sk_X509_new_null();
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, x);
	ERR_clear_error();
	fclose(f);
	judge(leaf, chain, names, nnames, NULL, out);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return 0;
}

/* ---- blocking TLS over a connected socket --------------------------- */

struct net_tls_sock {
	SSL_CTX *ctx;
	SSL *ssl;
};

struct net_tls_sock *
net_tls_sock_new(int fd, const char *host, char *err, size_t errlen)
{
	struct net_tls_sock *s = xcalloc(1, sizeof(*s));
	unsigned long e;

	s->ctx = SSL_CTX_new(TLS_client_method());
	if (s->ctx == NULL)
		panic("tls: SSL_CTX_new failed");
	/* The probe wants to see what the server offers, whatever it is;
	 * the verdict on the certificate is net_tls_sock_cert()'s. */
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
	s->ssl = SSL_new(s->ctx);
	if (host != NULL)
		SSL_set_tlsext_host_name(s->ssl, host);
	SSL_set_fd(s->ssl, fd);
	if (SSL_connect(s->ssl) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s", e != 0 ?
		    ERR_reason_error_string(e) : "the connection ended or "
		    "timed out during the handshake");
		ERR_clear_error();
		net_tls_sock_free(&s);
		return NULL;
	}
	return s;
}

ssize_t
net_tls_sock_read(struct net_tls_sock *s, void *buf, size_t len)
{
	int n = SSL_read(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	ERR_clear_error();
	return n > 0 ? n : n == 0 ? 0 : -1;
}

ssize_t
net_tls_sock_write(struct net_tls_sock *s, const void *buf, size_t len)
{
	int n = SSL_write(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	ERR_clear_error();
	return n > 0 ? n : -1;
}

const char *
net_tls_sock_version(const struct net_tls_sock *s)
{
	return SSL_get_version(s->ssl);
}

int
net_tls_sock_cert(struct net_tls_sock *s, const char *const *names,
    size_t nnames, const char *ca_file, struct net_cert_report *out)
{
	X509 *leaf = SSL_get1_peer_certificate(s->ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s->ssl);

	memset(out, 0, sizeof(*out));
	if (leaf == NULL)
		return -1;
	judge(leaf, chain, names, nnames, ca_file, out);
	X509_free(leaf);
	return 0;
}

void
net_tls_sock_free(struct net_tls_sock **sp)
{
	struct net_tls_sock *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->ssl != NULL) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	SSL_CTX_free(s->ctx);
	free(s);
}
