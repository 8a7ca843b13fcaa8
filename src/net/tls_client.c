/*
 * tls_client: TLS for connections we open ourselves (the queue runner's
 * SMTP client). Opportunistic by default (RFC 7435; RFC 3207 §4.1 lets a
 * client go on when the peer's certificate cannot be verified, and most
 * MX hosts on the Internet are not verifiable by name): TLS 1.2 at least,
 * the peer's certificate checked against the system's roots and the host
 * name only when the caller asks for verification.
 */
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

struct net_tls_client {
	SSL_CTX *ctx;
};

struct net_tls_client *
net_tls_client_new(char *err, size_t errlen)
{
	struct net_tls_client *t;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS client context: %s",
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_default_verify_paths(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	return t;
}

void
net_tls_client_free(struct net_tls_client **tp)
{
	if (*tp == NULL)
		return;
	SSL_CTX_free((*tp)->ctx);
	free(*tp);
	*tp = NULL;
}

struct bufferevent *
net_tls_client_wrap(struct net_tls_client *t, struct event_base *base,
    struct bufferevent *under, const char *host, bool is_verify)
{
	struct bufferevent *bev;
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		return NULL;
	if (host != NULL && host[0] != '\0') {
		SSL_set_tlsext_host_name(ssl, host);
		if (is_verify) {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			SSL_set1_host(ssl, host);
			SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		}
	}
	bev = bufferevent_openssl_filter_new(base, under, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

const char *
net_tls_bev_version(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

bool
is_net_tls_bev_verified(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL && SSL_get_verify_result(ssl) == X509_V_OK &&
	    SSL_get0_peer_certificate(ssl) != NULL;
}
