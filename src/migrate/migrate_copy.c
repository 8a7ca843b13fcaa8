/*
 * migrate_copy: what the IMAP and POP3 runs share: the source URL, our
 * names for the source's folders, what identifies a message again after a
 * UIDVALIDITY change (Message-ID, SHA-256 of the bytes), the sink that
 * stores messages many commits at a time, and migrate_run() itself.
 */
#include "migrate/migrate_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth/auth.h"
#include "lib/util.h"

/* ---- URL -------------------------------------------------------------- */

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes n bytes; NULL for a bad escape, a NUL or a control
 * character. */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int h, l;

			if (i + 2 >= n || (h = hex_value(s[i + 1])) < 0 ||
			    (l = hex_value(s[i + 2])) < 0)
				goto bad;
			ch = h * 16 + l;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f)
			goto bad;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int
migrate_url_parse(const char *url, struct migrate_url *u_out, char *err,
    size_t errlen)
{
	static const struct {
		const char *scheme;
		enum migrate_proto proto;
		bool is_tls;
		uint16_t port;
	} schemes[] = {
		{ "imaps://", MIGRATE_IMAP, true, 993 },
		{ "imap://", MIGRATE_IMAP, false, 143 },
		{ "pop3s://", MIGRATE_POP3, true, 995 },
		{ "pop3://", MIGRATE_POP3, false, 110 },
	};
	const char *p = NULL, *at, *host, *end, *colon;
	size_t k;

	memset(u_out, 0, sizeof(*u_out));
	for (k = 0; k < ARRAY_LEN(schemes); k++)
		if (strncasecmp(url, schemes[k].scheme,
		    strlen(schemes[k].scheme)) == 0) {
			p = url + strlen(schemes[k].scheme);
			break;
		}
	if (p == NULL) {
		snprintf(err, errlen, "%s: the source must start with "
		    "imaps://, imap://, pop3s:// or pop3://", url);
		return -1;
	}
	u_out->proto = schemes[k].proto;
	u_out->is_implicit_tls = schemes[k].is_tls;
	u_out->port = schemes[k].port;
	end = p + strcspn(p, "/?#");
	if (*end == '/' && end[1] == '\0')
		;	/* a trailing slash is fine */
	else if (*end != '\0') {
		snprintf(err, errlen, "%s: nothing may follow host[:port]",
		    url);
		return -1;
	}
	at = memrchr(p, '@', (size_t)(end - p));
	if (at == NULL || at == p) {
		snprintf(err, errlen, "%s: name the user: SCHEME://USER@HOST",
		    url);
		return -1;
	}
	/* USER:PASSWORD@ would send the password as the user name and
	 * echo it in reports: refused, without echoing the URL. */
	if (memchr(p, ':', (size_t)(at - p)) != NULL) {
		snprintf(err, errlen, "put no password in the URL: it is read "
		    "from the terminal or stdin");
		return -1;
	}
	if ((u_out->user = pct_decode(p, (size_t)(at - p))) == NULL) {
		snprintf(err, errlen, "%s: the user name has a bad %%-escape "
		    "or a control character", url);
		return -1;
	}
	host = at + 1;
	colon = NULL;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (close == NULL)
			goto bad_host;
		u_out->host = xstrndup(host + 1, (size_t)(close - host - 1));
		if (close + 1 < end) {
			if (close[1] != ':')
				goto bad_host;
			colon = close + 1;
		}
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		u_out->host = xstrndup(host, (size_t)((colon ? colon : end) -
		    host));
	}
	if (u_out->host[0] == '\0')
		goto bad_host;
	for (const char *h = u_out->host; *h; h++)
		if (!isalnum((unsigned char)*h) && *h != '.' && *h != '-' &&
		    *h != ':' && *h != '_')
			goto bad_host;
	if (colon != NULL) {
		uint64_t port;

		if (!migrate_text_u64(colon + 1, (size_t)(end - colon - 1),
		    &port) || port == 0 || port > 65535) {
			snprintf(err, errlen, "%s: the port must be a number "
			    "from 1 to 65535", url);
			migrate_url_deinit(u_out);
			return -1;
		}
		u_out->port = (uint16_t)port;
	}
	return 0;
bad_host:
	snprintf(err, errlen, "%s: the host is not a name or an address", url);
	migrate_url_deinit(u_out);
	return -1;
}

void
migrate_url_deinit(struct migrate_url *u)
{
	free(u->user);
	free(u->host);
	memset(u, 0, sizeof(*u));
}

/* ---- Names ------------------------------------------------------------ */

static const struct {
	uint32_t attr;
	enum store_special special;
	const char *name;
} specials[] = {
	{ MIGRATE_LIST_SENT, STORE_SPECIAL_SENT, "Sent" },
	{ MIGRATE_LIST_DRAFTS, STORE_SPECIAL_DRAFTS, "Drafts" },
	{ MIGRATE_LIST_TRASH, STORE_SPECIAL_TRASH, "Trash" },
	{ MIGRATE_LIST_JUNK, STORE_SPECIAL_JUNK, "Junk" },
	{ MIGRATE_LIST_ARCHIVE, STORE_SPECIAL_ARCHIVE, "Archive" },
};

char *
migrate_name_map(const char *utf8, char delim, uint32_t attrs,
    bool *is_mapped_out)
{
	size_t len = strlen(utf8), o = 0;
	/* Each level may gain one "_"; "/" separators replace delimiters. */
	char *out = xmalloc(len * 2 + 2);
	const char *p = utf8;

	*is_mapped_out = false;
	for (size_t k = 0; k < ARRAY_LEN(specials); k++)
		if (attrs & specials[k].attr) {
			free(out);
			return xstrdup(specials[k].name);
		}
	if (strcasecmp(utf8, "INBOX") == 0) {
		free(out);
		return xstrdup("INBOX");
	}
	for (;;) {
		const char *e = delim != '\0' ? strchr(p, delim) : NULL;
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);

		if (o > 0)
			out[o++] = '/';
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.') || p[0] == '~') {
			out[o++] = '_';
			*is_mapped_out = true;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)p[i];

			if (ch < 0x20 || ch == 0x7f || ch == '/' ||
			    ch == '*' || ch == '%') {
				out[o++] = '_';
				*is_mapped_out = true;
			} else {
				out[o++] = (char)ch;
			}
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	out[o] = '\0';
	/* A first level spelled INBOX keeps its children under ours. */
	if (strncasecmp(out, "INBOX/", 6) == 0)
		memcpy(out, "INBOX", 5);
	return out;
}

/* ---- Identity of a message -------------------------------------------- */

char *
migrate_message_id(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t e = i;

		while (e < len && msg[e] != '\n')
			e++;
		/* The header ends at the first empty line. */
		if (e == i || (e == i + 1 && msg[i] == '\r'))
			return NULL;
		if (e - i > 11 && strncasecmp(msg + i, "Message-ID:", 11) ==
		    0) {
			char out[999];
			size_t o = 0, k = i + 11;

			/* Unfold: continuation lines start with a blank. */
			for (;;) {
				for (; k < e && o < sizeof(out) - 1; k++)
					if (msg[k] != '\r')
						out[o++] = msg[k] == '\t' ?
						    ' ' : msg[k];
				if (e + 1 < len && (msg[e + 1] == ' ' ||
				    msg[e + 1] == '\t')) {
					k = e + 1;
					e = k;
					while (e < len && msg[e] != '\n')
						e++;
					continue;
				}
				break;
			}
			out[o] = '\0';
			{
				char *s = out, *t;

				while (*s == ' ')
					s++;
				t = s + strlen(s);
				while (t > s && t[-1] == ' ')
					*--t = '\0';
				for (char *q = s; *q; q++)
					if ((unsigned char)*q < 0x20)
						*q = ' ';
				return *s != '\0' ? xstrdup(s) : NULL;
			}
		}
		i = e + 1;
	}
	return NULL;
}

void
migrate_hash(const char *msg, size_t len, char out[65])
{
	unsigned char d[AUTH_SHA256_LEN];

	auth_sha256(msg, len, d);
	for (size_t i = 0; i < AUTH_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- The sink --------------------------------------------------------- */

struct pending {
	struct migrate_sink *k;
	struct migrate_folder_result *fr;
	uint64_t size;
};

int
migrate_sink_init(struct migrate_sink *k, struct store *st, int64_t account)
{
	memset(k, 0, sizeof(*k));
	k->st = st;
	k->account = account;
	k->base = event_base_new();
	return k->base != NULL ? 0 : -1;
}

void
migrate_sink_deinit(struct migrate_sink *k)
{
	migrate_sink_drain(k);
	if (k->base != NULL)
		event_base_free(k->base);
	k->base = NULL;
}

static void
sink_done(void *arg, const struct store_delivery_result *results, size_t n)
{
	struct pending *pd = arg;

	pd->k->inflight--;
	pd->k->inflight_bytes -= pd->size;
	if (n >= 1 && results[0].err == STORE_OK) {
		pd->fr->copied++;
		pd->fr->bytes += pd->size;
	} else {
		pd->fr->failed++;
		if (pd->k->store_error[0] == '\0')
			snprintf(pd->k->store_error,
			    sizeof(pd->k->store_error), "%s",
			    store_err_text(n >= 1 ? results[0].err :
			    STORE_TEMP));
	}
	free(pd);
}

int
migrate_sink_put(struct migrate_sink *k, struct migrate_folder_result *fr,
    const char *source, const char *folder, const char *mailbox,
    const char *msg, size_t len, uint32_t flags, const char *keywords,
    int64_t internal_date, const struct store_migrate_entry *e)
{
	struct store_delivery *d;
	struct pending *pd;
	enum store_err err;

	while (k->inflight >= MIGRATE_PIPELINE ||
	    (k->inflight > 0 && k->inflight_bytes + len >
	    MIGRATE_PIPELINE_BYTES))
		event_base_loop(k->base, EVLOOP_ONCE);
	if ((d = store_delivery_new(k->st, &err)) == NULL ||
	    store_delivery_write(d, msg, len, &err) < 0) {
		store_delivery_abort(&d);
		fr->failed++;
		snprintf(k->store_error, sizeof(k->store_error), "%s",
		    store_err_text(err));
		return 0;
	}
	/* Internal date 0 would mean "now" to the store; the epoch itself
	 * is one second later, close enough for a date that is 0. */
	store_delivery_add(d, k->account, mailbox, flags, keywords,
	    internal_date != 0 ? internal_date : 1);
	store_delivery_migrate(d, k->account, source, folder, e);
	pd = xcalloc(1, sizeof(*pd));
	pd->k = k;
	pd->fr = fr;
	pd->size = len;
	k->inflight++;
	k->inflight_bytes += len;
	if (store_delivery_submit(d, k->base, sink_done, pd) < 0) {
		k->inflight--;
		k->inflight_bytes -= len;
		free(pd);
		k->is_store_failed = true;
		snprintf(k->store_error, sizeof(k->store_error),
		    "the store is closing");
		return -1;
	}
	return 0;
}

void
migrate_sink_drain(struct migrate_sink *k)
{
	while (k->inflight > 0)
		event_base_loop(k->base, EVLOOP_ONCE);
}

/* ---- The run ---------------------------------------------------------- */

void
migrate_result_deinit(struct migrate_result *r)
{
	for (size_t i = 0; i < r->nfolders; i++) {
		free(r->folders[i].source);
		free(r->folders[i].target);
		free(r->folders[i].note);
	}
	free(r->folders);
	memset(r, 0, sizeof(*r));
}

int
migrate_run(struct store *st, int64_t account,
    const struct migrate_options *o, struct migrate_result *r)
{
	const struct migrate_url *u = o->url;
	struct migrate_conn c;
	char *source;
	int rc;

	memset(r, 0, sizeof(*r));
	/* The store's writer completes deliveries on our base from its own
	 * thread. */
	evthread_use_pthreads();
	if (migrate_conn_open(&c, u->host, u->port, o->timeout_secs,
	    (size_t)o->message_max + 2 * MIGRATE_LINE_MAX, r->error,
	    sizeof(r->error)) < 0) {
		r->fail = MIGRATE_FAIL_CONNECT;
		return -1;
	}
	if (u->is_implicit_tls && migrate_conn_tls(&c, o->ca_file,
	    o->is_insecure_tls, r->error, sizeof(r->error)) < 0) {
		migrate_conn_close(&c);
		r->fail = MIGRATE_FAIL_CONNECT;
		return -1;
	}
	/* The map's key for this source: protocol, user, host, port. */
	source = xasprintf("%s://%s@%s:%u", u->proto == MIGRATE_IMAP ?
	    "imap" : "pop3", u->user, u->host, (unsigned)u->port);
	if (u->proto == MIGRATE_IMAP)
		rc = migrate_imap_run(&c, st, account, o, source, r);
	else
		rc = migrate_pop3_run(&c, st, account, o, source, r);
	free(source);
	migrate_conn_close(&c);
	if (rc == 0) {
		for (size_t i = 0; i < r->nfolders; i++)
			if (r->folders[i].failed > 0) {
				r->fail = MIGRATE_FAIL_PARTIAL;
				snprintf(r->error, sizeof(r->error), "some "
				    "messages could not be stored");
				return -1;
			}
	}
	return rc;
}
