/*
 * http_mtasts: the MTA-STS policy (RFC 8461) of every domain we serve,
 * at https://mta-sts.DOMAIN/.well-known/mta-sts.txt, and the id that
 * `postern dns` publishes in the domain's _mta-sts TXT record. One policy
 * serves every domain: its mx lines name this server ([server] hostname,
 * the MX target `postern dns` prints), so it does not depend on the
 * domain. The id is a hash of the policy text, so any change of mode,
 * max_age or host name changes it and senders fetch the policy again
 * (RFC 8461 §3.1).
 */
#include "http/http_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "lib/util.h"
#include "store/store.h"

#define MTASTS_HOST "mta-sts."

char *
http_mtasts_policy(const struct config *cfg)
{
	/* RFC 8461 §3.2: CRLF-separated "key: value" pairs; version
	 * first; mx may be omitted in mode none, but naming the host does
	 * no harm and keeps one shape. */
	return xasprintf("version: STSv1\r\nmode: %s\r\nmx: %s\r\n"
	    "max_age: %llu\r\n", config_mtasts_mode_name(cfg->mtasts_mode),
	    cfg->hostname, (unsigned long long)cfg->mta_sts_max_age);
}

char *
http_mtasts_id(const struct config *cfg)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[AUTH_SHA256_LEN];
	char *policy = http_mtasts_policy(cfg);
	char id[33];

	auth_sha256(policy, strlen(policy), d);
	free(policy);
	/* RFC 8461 §3.1: id is 1 to 32 letters and digits; 128 bits of
	 * the hash. */
	for (size_t i = 0; i < 16; i++) {
		id[2 * i] = hex[d[i] >> 4];
		id[2 * i + 1] = hex[d[i] & 15];
	}
	id[32] = '\0';
	return xstrdup(id);
}

/* The DOMAIN of a Host "mta-sts.DOMAIN[:port]", lower case, or NULL when
 * Host is not of that form or DOMAIN is not a plain host name. */
static char *
policy_domain(const char *host)
{
	size_t n, k = strlen(MTASTS_HOST);
	char *d;

	if (host == NULL)
		return NULL;
	n = strcspn(host, ":");
	if (n <= k || n - k > 253 || strncasecmp(host, MTASTS_HOST, k) != 0)
		return NULL;
	host += k;
	n -= k;
	if (host[0] == '.' || host[0] == '-')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)host[i]) && host[i] != '-' &&
		    host[i] != '.')
			return NULL;
	}
	d = xstrndup(host, n);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	/* A trailing dot names the same domain (an absolute name). */
	if (n > 1 && d[n - 1] == '.')
		d[n - 1] = '\0';
	return d;
}

void
http_mtasts(struct http_session *s, const struct http_request *req)
{
	struct http_response r = {
		.status = 200,
		/* RFC 8461 §3.3: the media type is text/plain. */
		.type = "text/plain",
	};
	char *domain, *policy;

	/* RFC 8461 §3.3: the policy is fetched over HTTPS only, from the
	 * host mta-sts.DOMAIN; a sender ignores it anywhere else. */
	if (!is_net_conn_tls(s->conn)) {
		http_respond_error(s, req, 404, "The MTA-STS policy is served "
		    "over HTTPS only.", NULL);
		return;
	}
	domain = policy_domain(req->host);
	if (domain == NULL || !is_store_domain_local(s->ctx->store, domain)) {
		free(domain);
		http_respond_error(s, req, 404, "This server publishes no "
		    "MTA-STS policy for that host (mta-sts.DOMAIN of a domain "
		    "it serves).", NULL);
		return;
	}
	free(domain);
	policy = http_mtasts_policy(s->cfg);
	r.body = policy;
	r.len = strlen(policy);
	http_respond(s, req, &r);
	free(policy);
}
