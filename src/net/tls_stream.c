/*
 * tls_stream: a blocking TLS client for postern migrate, which reads its
 * source server on a plain thread without an event loop. Unlike the
 * queue's opportunistic client (tls_client.c) it verifies by default: the
 * user named the server, so a certificate that does not chain to a
 * trusted root or does not name the host ends the connection before any
 * credential is sent.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

struct net_tls_stream {
	SSL_CTX *ctx;
	SSL *ssl;
};

void
net_tls_stream_free(struct net_tls_stream **tp)
{
	struct net_tls_stream *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (t->ssl != NULL) {
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	free(t);
}

static bool
is_ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

struct net_tls_stream *
net_tls_stream_new(int fd, const char *host, const char *ca_file,
    bool is_insecure, char *err, size_t errlen)
{
	struct net_tls_stream *t = xcalloc(1, sizeof(*t));
	long verify;

	if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot read the CA file %s",
			    ca_file);
			net_tls_stream_free(&t);
			return NULL;
		}
	} else {
		SSL_CTX_set_default_verify_paths(t->ctx);
	}
	if ((t->ssl = SSL_new(t->ctx)) == NULL)
		goto ssl_fail;
	if (!is_ip_literal(host))
		SSL_set_tlsext_host_name(t->ssl, host);
	if (!is_insecure) {
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);

		if (is_ip_literal(host)) {
			X509_VERIFY_PARAM_set1_ip_asc(param, host);
		} else {
			SSL_set_hostflags(t->ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			SSL_set1_host(t->ssl, host);
		}
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	}
	SSL_set_fd(t->ssl, fd);
	if (SSL_connect(t->ssl) != 1) {
		verify = SSL_get_verify_result(t->ssl);
		if (!is_insecure && verify != X509_V_OK)
			snprintf(err, errlen, "the server's certificate is not "
			    "trusted: %s (use --ca-file, or --insecure-tls to "
			    "skip the check)", X509_verify_cert_error_string(
			    verify));
		else
			snprintf(err, errlen, "TLS handshake failed: %s",
			    ERR_peek_last_error() != 0 ?
			    ERR_reason_error_string(ERR_peek_last_error()) :
			    "connection closed or timed out");
		ERR_clear_error();
		net_tls_stream_free(&t);
		return NULL;
	}
	return t;
ssl_fail:
	snprintf(err, errlen, "cannot set up TLS: %s",
	    ERR_reason_error_string(ERR_get_error()));
	net_tls_stream_free(&t);
	return NULL;
}

ssize_t
net_tls_stream_read(struct net_tls_stream *t, void *buf, size_t len)
{
	size_t got = 0;
	int rc = SSL_read_ex(t->ssl, buf, len, &got);

	if (rc == 1)
		return (ssize_t)got;
	if (SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN)
		return 0;
	ERR_clear_error();
	return -1;
}

int
net_tls_stream_write(struct net_tls_stream *t, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(t->ssl, (const char *)buf + done, len - done,
		    &n) != 1) {
			ERR_clear_error();
			return -1;
		}
		done += n;
	}
	return 0;
}
