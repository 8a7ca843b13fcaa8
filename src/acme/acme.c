/*
 * acme: the ACME client thread (RFC 8555; acme.h). Each round reads the
 * domains, and when the certificate is missing, does not cover them, or
 * has lived 2/3 of its lifetime, runs one order: account (§7.3), order
 * (§7.4), one challenge per authorization (§7.5.1), finalize with a CSR
 * for a new key, download the chain, write it and hand it to net. Any
 * failure leaves the served certificate as it was and retries after a
 * delay that doubles from [acme] retry_first to retry_max.
 */
#include "acme/acme.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/net.h"

/* Bounds on what the CA may send us. */
#define ACME_BODY_MAX (1024 * 1024)	/* a certificate chain fits */
#define ACME_HEADER_MAX 2048
#define ACME_TOKEN_MAX 256
/* RFC 8555 §7.1.3 leaves polling to us: every second, for at most this
 * long per authorization or order. */
#define ACME_POLL_SECS 1
#define ACME_POLL_MAX 120
/* Let's Encrypt takes at most 100 names per certificate; net holds one
 * pending challenge per name. */
#define ACME_NAMES_MAX NET_ACME_NAMES_MAX
/* How often to look at the store's domains while the certificate is
 * good (a new domain wants a new certificate). */
#define ACME_CHECK_SECS 600

struct acme {
	char *directory;
	char *contact;
	char *ca_file;
	bool is_alpn;		/* tls-alpn-01, else http-01 */
	uint64_t retry_first;
	uint64_t retry_max;
	char *dir;		/* DATA/acme */
	char *account_key_path;
	char *cert_key_path;
	char *cert_path;
	struct store *store;

	pthread_t thread;
	bool is_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool is_stopping;	/* guarded by mu */

	/* The served certificate: when it was issued and ends, and the
	 * names it covers (0 when none). */
	int64_t not_before;
	int64_t not_after;
	char **names;
	size_t nnames;
	unsigned failures;
};

/* One order's state: the CA's URLs, the account, the last nonce. */
struct acme_run {
	struct acme *a;
	CURL *curl;
	struct net_acme_key *account;
	char *jwk;
	char *thumbprint;
	char *kid;		/* the account URL, once known */
	char *nonce;
	char *new_nonce;
	char *new_account;
	char *new_order;
	char err[512];
};

struct acme_resp {
	long status;
	char *body;
	size_t len;
	bool is_too_big;
	char *nonce;
	char *location;
};

static char *
acme_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

char **
acme_names(char *const *domains, size_t *n_out)
{
	static const char *const prefixes[] = { "mail.", "autoconfig.",
	    "autodiscover.", "mta-sts." };
	size_t n = 0, cap = 0;
	char **names;

	while (domains[cap] != NULL)
		cap++;
	names = xcalloc(cap * ARRAY_LEN(prefixes) + 1, sizeof(*names));
	for (size_t i = 0; domains[i] != NULL; i++) {
		for (size_t p = 0; p < ARRAY_LEN(prefixes); p++)
			names[n++] = xasprintf("%s%s", prefixes[p],
			    domains[i]);
	}
	*n_out = n;
	return names;
}

static void
names_free(char ***namesp, size_t n)
{
	char **names = *namesp;

	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	*namesp = NULL;
}

/* ---- HTTPS ------------------------------------------------------------ */

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb;

	if (r->len + n > ACME_BODY_MAX) {
		r->is_too_big = true;
		return 0;
	}
	r->body = xrealloc(r->body, r->len + n + 1);
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Ends a transfer when postern stops. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct acme *a = arg;
	bool is_stopping;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	pthread_mutex_lock(&a->mu);
	is_stopping = a->is_stopping;
	pthread_mutex_unlock(&a->mu);
	return is_stopping ? 1 : 0;
}

/* Keeps the value of a header we need, trimmed, if it is short. */
static void
header_take(char **field, const char *line, size_t n, size_t namelen)
{
	const char *v = line + namelen;
	size_t vlen = n - namelen;

	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	    v[vlen - 1] == ' '))
		vlen--;
	if (vlen == 0 || vlen > ACME_HEADER_MAX)
		return;
	free(*field);
	*field = xstrndup(v, vlen);
}

static size_t
on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct acme_resp *r = arg;
	size_t n = size * nmemb;

	if (n > 13 && strncasecmp(line, "Replay-Nonce:", 13) == 0)
		header_take(&r->nonce, line, n, 13);
	else if (n > 9 && strncasecmp(line, "Location:", 9) == 0)
		header_take(&r->location, line, n, 9);
	return n;
}

static void
resp_deinit(struct acme_resp *r)
{
	free(r->body);
	free(r->nonce);
	free(r->location);
	memset(r, 0, sizeof(*r));
}

/* GET url (body NULL, is_head false), HEAD url, or POST body as JOSE.
 * Returns 0 with r filled (any HTTP status), or -1 with run->err set. */
static int
http_do(struct acme_run *run, const char *url, const char *body,
    bool is_head, struct acme_resp *r)
{
	CURL *c = run->curl;
	struct curl_slist *hdrs = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "postern-acme");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, run->a);
	if (run->a->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, run->a->ca_file);
	if (is_head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (body != NULL) {
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/jose+json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(body));
	}
	rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		snprintf(run->err, sizeof(run->err), "%s: %s", url,
		    r->is_too_big ? "reply longer than 1 MiB" :
		    curl_easy_strerror(rc));
		resp_deinit(r);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->nonce != NULL) {
		free(run->nonce);
		run->nonce = xstrdup(r->nonce);
	}
	return 0;
}

/* The body as a JSON object, or NULL with run->err set. */
static json_t *
resp_json(struct acme_run *run, const char *url, const struct acme_resp *r)
{
	json_error_t jerr;
	json_t *j;

	if (r->body == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: empty reply (HTTP "
		    "%ld)", url, r->status);
		return NULL;
	}
	j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		snprintf(run->err, sizeof(run->err), "%s: reply is not a JSON "
		    "object (HTTP %ld)", url, r->status);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A string member of j, or NULL. */
static const char *
jstr(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* RFC 8555 §6.7: a problem document's type and detail, for the log. */
static void
problem_set(struct acme_run *run, const char *url, const struct acme_resp *r)
{
	json_t *j = r->body != NULL ? json_loadb(r->body, r->len, 0, NULL) :
	    NULL;
	const char *type = j != NULL ? jstr(j, "type") : NULL;
	const char *detail = j != NULL ? jstr(j, "detail") : NULL;

	snprintf(run->err, sizeof(run->err), "%s: HTTP %ld: %s: %s", url,
	    r->status, type != NULL ? type : "no problem type",
	    detail != NULL ? detail : "no detail");
	json_decref(j);
}

static bool
is_bad_nonce(const struct acme_resp *r)
{
	json_t *j;
	const char *type;
	bool is_bad;

	if (r->status != 400 || r->body == NULL)
		return false;
	j = json_loadb(r->body, r->len, 0, NULL);
	type = j != NULL ? jstr(j, "type") : NULL;
	is_bad = type != NULL &&
	    strcmp(type, "urn:ietf:params:acme:error:badNonce") == 0;
	json_decref(j);
	return is_bad;
}

/* RFC 8555 §6.2: a JWS (flattened JSON) over payload (NULL: POST-as-GET,
 * the empty payload), signed by the account key, naming the account by
 * its URL once known, else by its key. */
static char *
jws_make(struct acme_run *run, const char *url, const char *payload)
{
	json_t *prot = json_object();
	json_t *body = json_object();
	char *prot_text, *prot_b64, *payload_b64, *input, *sig, *out;

	json_object_set_new(prot, "alg", json_string("ES256"));
	json_object_set_new(prot, "nonce", json_string(run->nonce));
	json_object_set_new(prot, "url", json_string(url));
	if (run->kid != NULL)
		json_object_set_new(prot, "kid", json_string(run->kid));
	else
		json_object_set_new(prot, "jwk", json_loads(run->jwk, 0,
		    NULL));
	prot_text = json_dumps(prot, JSON_COMPACT);
	prot_b64 = base64_encode(prot_text, strlen(prot_text), true);
	payload_b64 = payload != NULL ?
	    base64_encode(payload, strlen(payload), true) : xstrdup("");
	input = xasprintf("%s.%s", prot_b64, payload_b64);
	sig = net_acme_key_sign(run->account, input, strlen(input));
	json_object_set_new(body, "protected", json_string(prot_b64));
	json_object_set_new(body, "payload", json_string(payload_b64));
	json_object_set_new(body, "signature", json_string(sig));
	out = json_dumps(body, JSON_COMPACT);
	free(prot_text);
	free(prot_b64);
	free(payload_b64);
	free(input);
	free(sig);
	json_decref(prot);
	json_decref(body);
	return out;
}

/* POSTs payload to url as a JWS, with a fresh nonce, trying again on
 * badNonce (§6.5: the client retries with the nonce of the error). Returns
 * 0 with r filled (status 2xx), or -1 with run->err set. */
static int
acme_post(struct acme_run *run, const char *url, const char *payload,
    struct acme_resp *r)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		char *jws;
		int rc;

		if (run->nonce == NULL) {
			struct acme_resp h;

			if (http_do(run, run->new_nonce, NULL, true, &h) < 0)
				return -1;
			resp_deinit(&h);
			if (run->nonce == NULL) {
				snprintf(run->err, sizeof(run->err), "%s: no "
				    "Replay-Nonce", run->new_nonce);
				return -1;
			}
		}
		jws = jws_make(run, url, payload);
		free(run->nonce);
		run->nonce = NULL;
		rc = http_do(run, url, jws, false, r);
		free(jws);
		if (rc < 0)
			return -1;
		if (r->status >= 200 && r->status < 300)
			return 0;
		if (!is_bad_nonce(r))
			break;
		resp_deinit(r);
	}
	problem_set(run, url, r);
	resp_deinit(r);
	return -1;
}

/* POST-as-GET (§6.3) of url, as a JSON object. */
static json_t *
acme_get_json(struct acme_run *run, const char *url)
{
	struct acme_resp r;
	json_t *j;

	if (acme_post(run, url, NULL, &r) < 0)
		return NULL;
	j = resp_json(run, url, &r);
	resp_deinit(&r);
	return j;
}

/* ---- One order -------------------------------------------------------- */

static int
directory_get(struct acme_run *run)
{
	const char *url = run->a->directory;
	struct acme_resp r;
	json_t *j;
	const char *nn, *na, *no;

	if (http_do(run, url, NULL, false, &r) < 0)
		return -1;
	if (r.status != 200) {
		problem_set(run, url, &r);
		resp_deinit(&r);
		return -1;
	}
	j = resp_json(run, url, &r);
	resp_deinit(&r);
	if (j == NULL)
		return -1;
	nn = jstr(j, "newNonce");
	na = jstr(j, "newAccount");
	no = jstr(j, "newOrder");
	if (nn == NULL || na == NULL || no == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: directory without "
		    "newNonce, newAccount or newOrder", url);
		json_decref(j);
		return -1;
	}
	run->new_nonce = xstrdup(nn);
	run->new_account = xstrdup(na);
	run->new_order = xstrdup(no);
	json_decref(j);
	return 0;
}

/* §7.3: creates the account, or finds it again by its key (200). */
static int
account_get(struct acme_run *run)
{
	json_t *p = json_object();
	struct acme_resp r;
	char *payload;
	int rc;

	json_object_set_new(p, "termsOfServiceAgreed", json_true());
	if (run->a->contact != NULL) {
		char *mailto = xasprintf("mailto:%s", run->a->contact);

		json_object_set_new(p, "contact", json_pack("[s]", mailto));
		free(mailto);
	}
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	rc = acme_post(run, run->new_account, payload, &r);
	free(payload);
	if (rc < 0)
		return -1;
	if (r.location == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: account without "
		    "Location", run->new_account);
		resp_deinit(&r);
		return -1;
	}
	run->kid = xstrdup(r.location);
	resp_deinit(&r);
	return 0;
}

static bool
is_token_ok(const char *token)
{
	size_t n = strlen(token);

	/* §8.1: base64url characters, at least 128 bits of entropy. */
	return n >= 22 && n <= ACME_TOKEN_MAX &&
	    strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_") == n;
}

/* Sleeps secs unless postern is stopping. Returns -1 when stopping. */
static int
acme_sleep(struct acme *a, unsigned secs)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&a->mu);
	while (!a->is_stopping &&
	    pthread_cond_timedwait(&a->cond, &a->mu, &ts) != ETIMEDOUT)
		;
	if (a->is_stopping)
		rc = -1;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* Polls url until its status is no longer one of the waiting ones.
 * Returns the object (caller frees) or NULL with run->err set. */
static json_t *
poll_until(struct acme_run *run, const char *url, const char *wait1,
    const char *wait2)
{
	for (unsigned i = 0; i < ACME_POLL_MAX; i++) {
		json_t *j = acme_get_json(run, url);
		const char *status;

		if (j == NULL)
			return NULL;
		status = jstr(j, "status");
		if (status == NULL || (strcmp(status, wait1) != 0 &&
		    (wait2 == NULL || strcmp(status, wait2) != 0)))
			return j;
		json_decref(j);
		if (acme_sleep(run->a, ACME_POLL_SECS) < 0) {
			snprintf(run->err, sizeof(run->err), "stopping");
			return NULL;
		}
	}
	snprintf(run->err, sizeof(run->err), "%s: still not done after %d "
	    "seconds", url, ACME_POLL_MAX * ACME_POLL_SECS);
	return NULL;
}

/* §7.5: proves control of the authorization's identifier with our
 * challenge type, unless the CA already holds it valid. */
static int
authz_do(struct acme_run *run, const char *url, char **names, size_t nnames)
{
	const char *want = run->a->is_alpn ? "tls-alpn-01" : "http-01";
	json_t *authz = acme_get_json(run, url);
	json_t *ch = NULL, *chs, *v;
	const char *status, *name, *token, *ch_url;
	char *keyauth, *name_copy;
	struct acme_resp r;
	size_t i;
	int rc = -1;

	if (authz == NULL)
		return -1;
	status = jstr(authz, "status");
	name = jstr(json_object_get(authz, "identifier"), "value");
	if (status != NULL && strcmp(status, "valid") == 0) {
		json_decref(authz);
		return 0;
	}
	if (status == NULL || strcmp(status, "pending") != 0 || name ==
	    NULL) {
		snprintf(run->err, sizeof(run->err), "%s: authorization for "
		    "%s is %s", url, name != NULL ? name : "?",
		    status != NULL ? status : "without status");
		json_decref(authz);
		return -1;
	}
	/* §7.1.4: the identifier is one of those we ordered. A CA naming
	 * another would have us answer challenges (serve a TLS-ALPN-01
	 * certificate, an HTTP-01 token) for a name we never asked for. */
	for (i = 0; i < nnames && strcasecmp(names[i], name) != 0; i++)
		;
	if (i == nnames) {
		snprintf(run->err, sizeof(run->err), "%s: authorization for "
		    "%.255s, a name not ordered", url, name);
		json_decref(authz);
		return -1;
	}
	chs = json_object_get(authz, "challenges");
	json_array_foreach(chs, i, v) {
		const char *type = jstr(v, "type");

		if (type != NULL && strcmp(type, want) == 0) {
			ch = v;
			break;
		}
	}
	token = ch != NULL ? jstr(ch, "token") : NULL;
	ch_url = ch != NULL ? jstr(ch, "url") : NULL;
	if (token == NULL || ch_url == NULL || !is_token_ok(token)) {
		snprintf(run->err, sizeof(run->err), "%s: no usable %s "
		    "challenge for %s", url, want, name);
		json_decref(authz);
		return -1;
	}
	/* §8.1: the key authorization is the token and the account key's
	 * thumbprint. */
	keyauth = xasprintf("%s.%s", token, run->thumbprint);
	/* The strings of authz go with it when polling replaces it. */
	name = name_copy = xstrdup(name);
	if (run->a->is_alpn) {
		if (net_acme_tlsalpn01_set(name, keyauth, run->err,
		    sizeof(run->err)) < 0)
			goto out;
	} else {
		if (net_acme_http01_set(token, keyauth, run->err,
		    sizeof(run->err)) < 0)
			goto out;
	}
	log_info(NULL, "acme.challenge name=%s type=%s", name, want);
	/* §7.5.1: an empty object says we are ready. */
	if (acme_post(run, ch_url, "{}", &r) < 0)
		goto out;
	resp_deinit(&r);
	json_decref(authz);
	authz = poll_until(run, url, "pending", "processing");
	if (authz == NULL)
		goto out;
	status = jstr(authz, "status");
	if (status != NULL && strcmp(status, "valid") == 0) {
		rc = 0;
	} else {
		/* The challenge's error says why (§8: "error"). */
		const char *detail = NULL;

		json_array_foreach(json_object_get(authz, "challenges"), i,
		    v) {
			const char *type = jstr(v, "type");

			if (type != NULL && strcmp(type, want) == 0)
				detail = jstr(json_object_get(v, "error"),
				    "detail");
		}
		snprintf(run->err, sizeof(run->err), "%s challenge for %s "
		    "failed: %s", want, name, detail != NULL ? detail :
		    status != NULL ? status : "no status");
	}
out:
	json_decref(authz);
	free(keyauth);
	free(name_copy);
	return rc;
}

static int
file_write(const char *path, const char *data, size_t len, char *err,
    size_t errlen)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f;

	unlink(tmp);
	f = fopen(tmp, "wxe");
	if (f == NULL || fwrite(data, 1, len, f) != len || fflush(f) != 0 ||
	    fsync(fileno(f)) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (f != NULL)
			fclose(f);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

/* §7.4: order, authorizations, finalize, download; then writes the key
 * and chain and serves them. */
static int
order_do(struct acme_run *run, char **names, size_t nnames)
{
	struct acme *a = run->a;
	json_t *p = json_object(), *ids = json_array(), *order = NULL, *v;
	struct acme_resp r = { 0 };
	struct net_acme_key *key = NULL;
	char *payload, *order_url = NULL, *csr = NULL;
	const char *status, *finalize, *cert_url;
	int64_t nb, na;
	size_t i;
	int rc = -1;

	for (i = 0; i < nnames; i++)
		json_array_append_new(ids, json_pack("{s:s,s:s}", "type",
		    "dns", "value", names[i]));
	json_object_set_new(p, "identifiers", ids);
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	rc = acme_post(run, run->new_order, payload, &r);
	free(payload);
	if (rc < 0)
		return -1;
	rc = -1;
	if (r.location == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: order without "
		    "Location", run->new_order);
		goto out;
	}
	order_url = xstrdup(r.location);
	order = resp_json(run, run->new_order, &r);
	resp_deinit(&r);
	if (order == NULL)
		goto out;
	/* §7.1.3: one authorization per identifier of the order; more
	 * would be a CA keeping us polling. */
	if (json_array_size(json_object_get(order, "authorizations")) >
	    nnames) {
		snprintf(run->err, sizeof(run->err), "%s: more authorizations "
		    "than names ordered", order_url);
		goto out;
	}
	json_array_foreach(json_object_get(order, "authorizations"), i, v) {
		const char *url = json_string_value(v);

		if (url == NULL) {
			snprintf(run->err, sizeof(run->err), "%s: bad "
			    "authorization list", order_url);
			goto out;
		}
		if (authz_do(run, url, names, nnames) < 0)
			goto out;
	}
	/* §7.4: finalize only once the order is "ready" (every
	 * authorization valid); a CA may take a moment to notice. */
	json_decref(order);
	order = poll_until(run, order_url, "pending", NULL);
	if (order == NULL)
		goto out;
	status = jstr(order, "status");
	if (status == NULL || strcmp(status, "ready") != 0) {
		snprintf(run->err, sizeof(run->err), "%s: order is %s, not "
		    "ready", order_url, status != NULL ? status :
		    "without status");
		goto out;
	}
	finalize = jstr(order, "finalize");
	if (finalize == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: order without "
		    "finalize", order_url);
		goto out;
	}
	/* A new key for each certificate: the old one keeps serving until
	 * the new chain is here. */
	key = net_acme_key_new();
	csr = net_acme_csr(key, (const char *const *)names, nnames, run->err,
	    sizeof(run->err));
	if (csr == NULL)
		goto out;
	p = json_pack("{s:s}", "csr", csr);
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (acme_post(run, finalize, payload, &r) < 0) {
		free(payload);
		goto out;
	}
	free(payload);
	resp_deinit(&r);
	json_decref(order);
	order = poll_until(run, order_url, "processing", "ready");
	if (order == NULL)
		goto out;
	status = jstr(order, "status");
	cert_url = jstr(order, "certificate");
	if (status == NULL || strcmp(status, "valid") != 0 ||
	    cert_url == NULL) {
		snprintf(run->err, sizeof(run->err), "%s: order is %s",
		    order_url, status != NULL ? status : "without status");
		goto out;
	}
	if (acme_post(run, cert_url, NULL, &r) < 0)
		goto out;
	if (r.body == NULL || net_acme_cert_info(r.body, r.len, &nb, &na,
	    (const char *const *)names, nnames) != 0 || na <= nb) {
		snprintf(run->err, sizeof(run->err), "%s: the certificate "
		    "does not cover the names ordered", cert_url);
		goto out;
	}
	/* A certificate already due for renewal (expired, or nearly so)
	 * would replace a good one and have us order again at once, every
	 * second, without the failures' backoff. */
	if (nb + (na - nb) * 2 / 3 <= (int64_t)time(NULL)) {
		snprintf(run->err, sizeof(run->err), "%s: the certificate is "
		    "expired or due for renewal already", cert_url);
		goto out;
	}
	/* Nothing is written before the chain is known to serve with our
	 * key and to name only what we ordered. */
	if (net_acme_cert_check(r.body, r.len, key, (const char *const *)names,
	    nnames, run->err, sizeof(run->err)) < 0)
		goto out;
	if (net_acme_key_save(key, a->cert_key_path, run->err,
	    sizeof(run->err)) < 0 ||
	    file_write(a->cert_path, r.body, r.len, run->err,
	    sizeof(run->err)) < 0 ||
	    net_acme_cert_install(a->cert_path, a->cert_key_path, run->err,
	    sizeof(run->err)) < 0)
		goto out;
	a->not_before = nb;
	a->not_after = na;
	names_free(&a->names, a->nnames);
	a->names = names;
	a->nnames = nnames;
	rc = 0;
out:
	resp_deinit(&r);
	json_decref(order);
	free(order_url);
	free(csr);
	net_acme_key_free(&key);
	return rc;
}

/* One attempt to get a certificate for names. Takes names on success. */
static int
acme_obtain(struct acme *a, char **names, size_t nnames, char *err,
    size_t errlen)
{
	struct acme_run run = { .a = a };
	int rc = -1;

	run.curl = curl_easy_init();
	if (run.curl == NULL) {
		snprintf(err, errlen, "cannot start libcurl");
		return -1;
	}
	run.account = net_acme_key_load(a->account_key_path, true, run.err,
	    sizeof(run.err));
	if (run.account != NULL) {
		run.jwk = net_acme_key_jwk(run.account);
		run.thumbprint = net_acme_sha256_b64(run.jwk,
		    strlen(run.jwk));
		if (directory_get(&run) == 0 && account_get(&run) == 0 &&
		    order_do(&run, names, nnames) == 0)
			rc = 0;
	}
	net_acme_challenges_clear();
	if (rc < 0)
		snprintf(err, errlen, "%s", run.err);
	curl_easy_cleanup(run.curl);
	net_acme_key_free(&run.account);
	free(run.jwk);
	free(run.thumbprint);
	free(run.kid);
	free(run.nonce);
	free(run.new_nonce);
	free(run.new_account);
	free(run.new_order);
	return rc;
}

/* ---- The thread ------------------------------------------------------- */

static bool
is_covering(const struct acme *a, char **names, size_t nnames)
{
	for (size_t i = 0; i < nnames; i++) {
		bool has = false;

		for (size_t j = 0; j < a->nnames && !has; j++)
			has = strcasecmp(a->names[j], names[i]) == 0;
		if (!has)
			return false;
	}
	return true;
}

/* Renewal at 2/3 of the lifetime (as Let's Encrypt advises: 60 days of
 * 90). */
static int64_t
renew_at(const struct acme *a)
{
	return a->not_before + (a->not_after - a->not_before) * 2 / 3;
}

/* One round: returns how many seconds to wait before the next. */
static uint64_t
acme_round(struct acme *a)
{
	char **domains = NULL, **names;
	size_t nnames;
	enum store_err serr;
	char err[512];
	int64_t now = (int64_t)time(NULL);
	uint64_t delay;

	if (store_domain_list(a->store, &domains, &serr) < 0) {
		log_error(NULL, "acme.failed error=\"cannot list the domains\"");
		return a->retry_first;
	}
	names = acme_names(domains, &nnames);
	store_strings_free(&domains);
	if (nnames == 0) {
		log_debug(NULL, "acme.idle reason=\"no domains\"");
		names_free(&names, nnames);
		return ACME_CHECK_SECS;
	}
	if (nnames > ACME_NAMES_MAX) {
		log_error(NULL, "acme.failed error=\"%zu names, more than one "
		    "certificate may hold (%d)\"", nnames, ACME_NAMES_MAX);
		names_free(&names, nnames);
		return ACME_CHECK_SECS;
	}
	if (a->nnames > 0 && is_covering(a, names, nnames) &&
	    now < renew_at(a)) {
		int64_t left = renew_at(a) - now;

		names_free(&names, nnames);
		return left < ACME_CHECK_SECS ? (uint64_t)left :
		    ACME_CHECK_SECS;
	}
	log_info(NULL, "acme.order names=%zu first=%s reason=%s", nnames,
	    names[0], a->nnames == 0 ? "none" :
	    is_covering(a, names, nnames) ? "renewal" : "new_names");
	if (acme_obtain(a, names, nnames, err, sizeof(err)) == 0) {
		a->failures = 0;
		log_info(NULL, "acme.certificate names=%zu not_after=%lld "
		    "renew_at=%lld", a->nnames, (long long)a->not_after,
		    (long long)renew_at(a));
		now = (int64_t)time(NULL);
		return renew_at(a) > now ? (uint64_t)(renew_at(a) - now) : 1;
	}
	names_free(&names, nnames);
	/* Backoff: retry_first, doubling, at most retry_max. */
	delay = a->retry_first;
	for (unsigned i = 0; i < a->failures && delay < a->retry_max; i++)
		delay *= 2;
	if (delay > a->retry_max)
		delay = a->retry_max;
	a->failures++;
	log_warn(NULL, "acme.failed error=\"%s\" retry_seconds=%llu "
	    "result=\"old certificate kept\"", err, (unsigned long long)delay);
	return delay;
}

static void *
acme_main(void *arg)
{
	struct acme *a = arg;

	for (;;) {
		uint64_t delay;

		pthread_mutex_lock(&a->mu);
		if (a->is_stopping) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		pthread_mutex_unlock(&a->mu);
		delay = acme_round(a);
		if (delay > ACME_CHECK_SECS)
			delay = ACME_CHECK_SECS;
		if (acme_sleep(a, (unsigned)delay) < 0)
			break;
	}
	return NULL;
}

/* Serves the certificate an earlier run wrote, when it is whole. */
static void
acme_cert_load(struct acme *a)
{
	FILE *f = fopen(a->cert_path, "re");
	char *pem = xmalloc(ACME_BODY_MAX);
	size_t len;
	char err[512];
	char **domains = NULL;
	enum store_err serr;

	if (f == NULL) {
		free(pem);
		return;
	}
	len = fread(pem, 1, ACME_BODY_MAX, f);
	fclose(f);
	if (net_acme_cert_info(pem, len, &a->not_before, &a->not_after, NULL,
	    0) != 0 || net_acme_cert_install(a->cert_path, a->cert_key_path,
	    err, sizeof(err)) < 0) {
		log_warn(NULL, "acme.cert_unusable path=%s result=\"a new one "
		    "is ordered\"", a->cert_path);
		a->not_before = a->not_after = 0;
		free(pem);
		return;
	}
	/* The names it covers: those of today's domains it covers. A name
	 * it misses makes the next round order a new certificate. */
	if (store_domain_list(a->store, &domains, &serr) == 0) {
		size_t n;
		char **names = acme_names(domains, &n);

		a->names = xcalloc(n + 1, sizeof(*a->names));
		for (size_t i = 0; i < n; i++) {
			const char *one[] = { names[i] };
			int64_t nb, na;

			if (net_acme_cert_info(pem, len, &nb, &na, one, 1) == 0)
				a->names[a->nnames++] = xstrdup(names[i]);
		}
		names_free(&names, n);
		store_strings_free(&domains);
	}
	log_info(NULL, "acme.cert_loaded path=%s names=%zu not_after=%lld",
	    a->cert_path, a->nnames, (long long)a->not_after);
	free(pem);
}

struct acme *
acme_new(const struct config *cfg, struct store *store, char *err,
    size_t errlen)
{
	struct acme *a = xcalloc(1, sizeof(*a));

	/* Before any thread of ours uses libcurl (not thread-safe). */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	a->directory = xstrdup(cfg->acme_directory);
	a->contact = cfg->acme_contact != NULL ?
	    xstrdup(cfg->acme_contact) : NULL;
	a->ca_file = cfg->acme_ca_file != NULL ?
	    xstrdup(cfg->acme_ca_file) : NULL;
	a->is_alpn = strcmp(cfg->acme_challenge, "tls-alpn-01") == 0;
	a->retry_first = cfg->acme_retry_first;
	a->retry_max = cfg->acme_retry_max;
	a->store = store;
	a->dir = acme_path(cfg->data_dir, "acme");
	a->account_key_path = acme_path(a->dir, "account.key");
	a->cert_key_path = acme_path(a->dir, "cert.key");
	a->cert_path = acme_path(a->dir, "cert.pem");
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (mkdir(a->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create: %s", a->dir,
		    strerror(errno));
		acme_free(&a);
		return NULL;
	}
	acme_cert_load(a);
	return a;
}

int
acme_start(struct acme *a, char *err, size_t errlen)
{
	int rc = pthread_create(&a->thread, NULL, acme_main, a);

	if (rc != 0) {
		snprintf(err, errlen, "cannot start the ACME thread: %s",
		    strerror(rc));
		return -1;
	}
	a->is_started = true;
	return 0;
}

void
acme_free(struct acme **ap)
{
	struct acme *a = *ap;

	if (a == NULL)
		return;
	if (a->is_started) {
		pthread_mutex_lock(&a->mu);
		a->is_stopping = true;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	names_free(&a->names, a->nnames);
	free(a->directory);
	free(a->contact);
	free(a->ca_file);
	free(a->dir);
	free(a->account_key_path);
	free(a->cert_key_path);
	free(a->cert_path);
	free(a);
	*ap = NULL;
}

/* ---- the CA's clock, for postern doctor ------------------------------- */

struct date_resp {
	char *date;
	size_t len;
};

static size_t
on_date_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct date_resp *r = arg;
	size_t n = size * nmemb;

	(void)data;
	if (r->len + n > 64 * 1024)
		return 0;
	r->len += n;
	return n;
}

static size_t
on_date_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct date_resp *r = arg;
	size_t n = size * nmemb;

	/* A redirect's headers come first: the last Date wins. */
	if (n > 5 && strncasecmp(line, "Date:", 5) == 0)
		header_take(&r->date, line, n, 5);
	return n;
}

int
acme_server_date(const struct config *cfg, int64_t *date, char *err,
    size_t errlen)
{
	struct date_resp r = { 0 };
	CURL *c;
	CURLcode rc;
	time_t t;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errlen, "cannot start libcurl");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, cfg->acme_directory);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "postern-doctor");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_date_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_date_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	if (cfg->acme_ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->acme_ca_file);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", cfg->acme_directory,
		    curl_easy_strerror(rc));
		free(r.date);
		return -1;
	}
	if (r.date == NULL) {
		snprintf(err, errlen, "%s answers without a Date header",
		    cfg->acme_directory);
		return -1;
	}
	t = curl_getdate(r.date, NULL);
	if (t == (time_t)-1) {
		snprintf(err, errlen, "%s sends an unreadable Date: %.64s",
		    cfg->acme_directory, r.date);
		free(r.date);
		return -1;
	}
	free(r.date);
	*date = (int64_t)t;
	return 0;
}
