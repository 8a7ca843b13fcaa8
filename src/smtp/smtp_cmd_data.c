/*
 * smtp_cmd_data: DATA and BDAT (RFC 3030), and the delivery of what they
 * carry: Return-Path and Received headers (RFC 5321 §4.4, with the TLS
 * version and cipher), Date and Message-ID added to submissions that lack
 * them (RFC 6409 §8.2, §8.3), the body streamed into the store, and 250
 * only once the store reports it durable.
 */
#include "smtp/smtp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "mime/mime.h"

#define CHUNK 16384
/* More Received: fields than this and the message is in a loop. */
#define SMTP_MAX_HOPS 50

static void
date_format(char *out, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	/* RFC 5322 §3.3. */
	localtime_r(&now, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Writes to the milters' spool: the message waits there for them. */
static void
spool_write(struct smtp_session *s, const char *data, size_t n)
{
	while (n > 0) {
		ssize_t w = pwrite(s->milter_spool, data, n,
		    (off_t)s->milter_spool_len);

		if (w <= 0) {
			log_error(s->sid, "smtp.spool_write_failed error=\"%s\"",
			    strerror(errno));
			s->is_write_failed = true;
			return;
		}
		data += w;
		n -= (size_t)w;
		s->milter_spool_len += (uint64_t)w;
	}
}

/* Writes to the delivery, or to the spool when milters are to see the
 * message first; direct: to the delivery in any case. */
static void
store_write_to(struct smtp_session *s, const void *data, size_t n,
    bool is_direct)
{
	enum store_err err;

	/* No delivery: BDAT chunks of a transaction without recipients
	 * are read and dropped. */
	if (s->delivery == NULL || s->is_oversize || s->is_write_failed ||
	    n == 0)
		return;
	if (s->milter_spool >= 0 && !is_direct) {
		spool_write(s, data, n);
		return;
	}
	if (store_delivery_write(s->delivery, data, n, &err) < 0) {
		log_error(s->sid, "smtp.store_write_failed error=\"%s\"",
		    store_err_text(err));
		s->is_write_failed = true;
	}
}

static void
store_write(struct smtp_session *s, const void *data, size_t n)
{
	store_write_to(s, data, n, false);
}

/* How many fields called name does the header section hold? */
static size_t
field_count(const struct buf *h, const char *name)
{
	size_t n = strlen(name), count = 0;

	for (size_t i = 0; i + n < h->len; i++) {
		if ((i == 0 || h->data[i - 1] == '\n') &&
		    strncasecmp(h->data + i, name, n) == 0 &&
		    h->data[i + n] == ':')
			count++;
	}
	return count;
}

static bool
has_field(const struct buf *h, const char *name)
{
	return field_count(h, name) > 0;
}

/* Checks that every mailbox of the fields called name is the logged-in
 * account's; sets the refusal and returns -1 if not. */
static int
field_owned_check(struct smtp_session *s, const char *name, bool is_required)
{
	char **addrs = NULL;
	size_t nfields = 0;
	int rc = 0;

	if (mime_header_mailboxes(s->header.data, s->header.len, name,
	    &addrs, &nfields) < 0) {
		snprintf(s->header_refusal, sizeof(s->header_refusal),
		    "550 5.7.1 The %s: field cannot be read as a list of "
		    "addresses", name);
		return -1;
	}
	if (nfields > 1) {
		/* RFC 5322 §3.6: at most one of each. */
		snprintf(s->header_refusal, sizeof(s->header_refusal),
		    "550 5.7.1 The message has %zu %s: fields; one is "
		    "allowed", nfields, name);
		rc = -1;
	} else if (is_required && addrs[0] == NULL) {
		snprintf(s->header_refusal, sizeof(s->header_refusal),
		    "550 5.7.1 The message has no %s: address; RFC 5322 "
		    "requires one", name);
		rc = -1;
	}
	for (char **a = addrs; rc == 0 && *a != NULL; a++) {
		if (!is_smtp_sender_owned(s, *a)) {
			/* The address goes back in the reply and the log:
			 * no control character of the client's with it. */
			for (char *c = *a; *c != '\0'; c++) {
				if ((unsigned char)*c < 0x20 || *c == 0x7f ||
				    *c == '"')
					*c = '?';
			}
			snprintf(s->header_refusal, sizeof(s->header_refusal),
			    "550 5.7.1 %s: address <%.100s> is not owned by "
			    "user %.100s", name, *a, s->id.address);
			rc = -1;
		}
	}
	mime_strings_free(&addrs);
	return rc;
}

/* The checks a header section must pass before the message is stored,
 * the refusal kept for the end of the data. is_cut: the header was
 * larger than the buffer and this is only its start. */
static void
header_check(struct smtp_session *s, bool is_cut)
{
	size_t hops = field_count(&s->header, "Received");

	/* RFC 5321 §6.3: counting Received: fields is how a loop is
	 * found; 50 is the limit Postfix uses (hopcount_limit). */
	if (hops > SMTP_MAX_HOPS) {
		log_info(s->sid, "smtp.refused reason=too_many_hops hops=%zu",
		    hops);
		snprintf(s->header_refusal, sizeof(s->header_refusal),
		    "554 5.4.6 Too many hops (%zu Received: fields), mail "
		    "loop", hops);
		return;
	}
	if (!s->is_authenticated)
		return;
	/* A logged-in user writes only as an address of the account: From:
	 * (and Sender:, when there is one) is what the reader sees and what
	 * DMARC aligns with (RFC 6409 §8; DESIGN.md, Security posture). */
	if (is_cut) {
		snprintf(s->header_refusal, sizeof(s->header_refusal),
		    "552 5.3.4 Header section longer than %zu bytes",
		    s->header.cap);
	} else if (field_owned_check(s, "From", true) == 0) {
		(void)field_owned_check(s, "Sender", false);
	}
	if (s->header_refusal[0] != '\0')
		log_info(s->sid, "smtp.refused user=<%s> reason=\"%s\"",
		    s->id.address, s->header_refusal);
}

static const char *
with_protocol(const struct smtp_session *s)
{
	/* RFC 3848 §1. */
	bool tls = is_net_conn_tls(s->conn);

	if (!s->is_esmtp)
		return "SMTP";
	if (s->is_smtputf8)
		return tls ? (s->is_authenticated ? "UTF8SMTPSA" : "UTF8SMTPS")
		    : (s->is_authenticated ? "UTF8SMTPA" : "UTF8SMTP");
	return tls ? (s->is_authenticated ? "ESMTPSA" : "ESMTPS") :
	    (s->is_authenticated ? "ESMTPA" : "ESMTP");
}

/* Writes our header fields and the client's header section. */
static void
header_write(struct smtp_session *s)
{
	char date[64];
	char *prefix, *tls = NULL, *added = NULL, *ar = NULL;
	const char *version = net_conn_tls_version(s->conn);

	if (s->ar != NULL)
		ar = authn_ar_field(s->ar);
	date_format(date, sizeof(date));
	if (version != NULL)
		tls = xasprintf("\r\n\t(using %s with cipher %s)", version,
		    net_conn_tls_cipher(s->conn));
	if (s->is_submission) {
		char *msgid = NULL;

		if (!has_field(&s->header, "Message-ID"))
			msgid = xasprintf("Message-ID: <%llx.%s@%s>\r\n",
			    (unsigned long long)time(NULL), s->sid,
			    s->cfg->hostname);
		added = xasprintf("%s%s%s%s", has_field(&s->header, "Date") ?
		    "" : "Date: ", has_field(&s->header, "Date") ? "" : date,
		    has_field(&s->header, "Date") ? "" : "\r\n",
		    msgid ? msgid : "");
		free(msgid);
	}
	/* Return-Path: is the store's (RFC 5321 §4.4), not for milters to
	 * see or change; the rest goes their way. */
	prefix = xasprintf("Return-Path: <%s>\r\n", s->mail_from);
	store_write_to(s, prefix, strlen(prefix), true);
	free(prefix);
	prefix = xasprintf("%s"
	    "Received: from %s ([%s])\r\n\tby %s (postern) with %s id %s%s"
	    "%s%s%s;\r\n\t%s\r\n%s",
	    ar ? ar : "", s->helo ? s->helo : "unknown",
	    net_conn_peer(s->conn), s->cfg->hostname, with_protocol(s),
	    s->sid, tls ? tls : "", s->nrcpts == 1 ? "\r\n\tfor <" : "",
	    s->nrcpts == 1 ? s->rcpts[0].address : "",
	    s->nrcpts == 1 ? ">" : "", date, added ? added : "");
	store_write(s, prefix, strlen(prefix));
	store_write(s, s->header.data, s->header.len);
	free(prefix);
	free(tls);
	free(added);
	free(ar);
	buf_clear(&s->header);
}

/* ---- DKIM (RFC 6376) on port 25 --------------------------------------- */

/* Mail another server hands us: not submission, not a logged-in client.
 * Unlike SPF, any client address: a signature says who wrote the
 * message, not who hands it over. */
static bool
is_dkim_wanted(const struct smtp_session *s)
{
	return !s->is_submission && !s->is_authenticated &&
	    s->ctx->authn != NULL && s->cfg->is_dkim_verify;
}

/* The header section is complete: reads its signatures. A signed
 * message's body is then held in a spool (our header goes above it and
 * must carry the results); returns true then. An unsigned one is
 * dkim=none, added only to a header SPF already has (mail from loopback
 * gets no header of ours for nothing). */
static bool
dkim_start(struct smtp_session *s, bool is_cut)
{
	enum store_err err;

	if (!is_dkim_wanted(s) || s->delivery == NULL)
		return false;
	s->has_dkim_verdict = true;
	memset(&s->dkim_verdict, 0, sizeof(s->dkim_verdict));
	if (is_cut) {
		/* Over the buffer: its fields cannot all be read. */
		if (is_authn_dkim_signed(s->header.data, s->header.len)) {
			if (s->ar == NULL)
				s->ar = authn_ar_new(s->cfg->hostname);
			authn_ar_add(s->ar, "dkim", "permerror", "header "
			    "section too long to verify", NULL, NULL);
		}
		return false;
	}
	s->dkim = authn_dkim_new(s->header.data, s->header.len, time(NULL));
	if (s->dkim == NULL) {
		if (s->ar != NULL)
			authn_dkim_ar_add(s->ar, &s->dkim_verdict);
		return false;
	}
	s->dkim_spool = store_spool_open(s->ctx->store, &err);
	if (s->dkim_spool < 0) {
		log_error(s->sid, "smtp.dkim_spool_failed error=\"%s\"",
		    store_err_text(err));
		authn_dkim_free(&s->dkim);
		if (s->ar == NULL)
			s->ar = authn_ar_new(s->cfg->hostname);
		authn_ar_add(s->ar, "dkim", "temperror", "no room to verify",
		    NULL, NULL);
		return false;
	}
	s->dkim_spooled = 0;
	s->is_dkim_held = true;
	return true;
}

/* Body bytes: on their way (store_write), or, for a signed message,
 * through the DKIM body hashes into the DKIM spool. */
static void
body_write(struct smtp_session *s, const char *data, size_t n)
{
	if (!s->is_dkim_held) {
		store_write(s, data, n);
		return;
	}
	if (s->is_oversize || s->is_write_failed || n == 0)
		return;
	if (s->dkim != NULL)
		authn_dkim_body(s->dkim, data, n);
	while (n > 0) {
		ssize_t w = write(s->dkim_spool, data, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error(s->sid, "smtp.dkim_spool_write_failed "
			    "error=\"%s\"", strerror(errno));
			s->is_write_failed = true;
			return;
		}
		data += w;
		n -= (size_t)w;
		s->dkim_spooled += (uint64_t)w;
	}
}

/* The DKIM spool after our header: to the milters' spool or the
 * delivery, as store_write() sends everything. */
static void
dkim_spool_copy(struct smtp_session *s)
{
	char buf[CHUNK];
	uint64_t off = 0;

	while (off < s->dkim_spooled && !s->is_write_failed) {
		size_t want = s->dkim_spooled - off < sizeof(buf) ?
		    (size_t)(s->dkim_spooled - off) : sizeof(buf);
		ssize_t r = pread(s->dkim_spool, buf, want, (off_t)off);

		if (r <= 0) {
			log_error(s->sid, "smtp.dkim_spool_read_failed "
			    "error=\"%s\"", r < 0 ? strerror(errno) :
			    "short");
			s->is_write_failed = true;
			break;
		}
		store_write(s, buf, (size_t)r);
		off += (uint64_t)r;
	}
	close(s->dkim_spool);
	s->dkim_spool = -1;
}

/* An unsigned message DMARC is to check: held as a signed one is (with
 * no hashes), so that dmarc= goes into our header above it. Returns
 * true when held. A header over the buffer is not held: its later
 * fields are written as they come (DMARC still runs, its result only
 * logged). */
static bool
hold_start(struct smtp_session *s)
{
	enum store_err err;

	if (s->is_dkim_held || s->delivery == NULL)
		return s->is_dkim_held;
	s->dkim_spool = store_spool_open(s->ctx->store, &err);
	if (s->dkim_spool < 0) {
		log_error(s->sid, "smtp.dmarc_spool_failed error=\"%s\"",
		    store_err_text(err));
		return false;
	}
	s->dkim_spooled = 0;
	s->is_dkim_held = true;
	return true;
}

/* Checks the client's header section, then writes our header fields and
 * it, unless DKIM or DMARC holds them until the end. */
static void
header_flush(struct smtp_session *s, bool is_cut)
{
	size_t removed = 0;

	/* RFC 8601 §5: a field claiming our authserv-id did not come from
	 * us; it goes before anyone can read it. A header over the buffer
	 * is examined in its first part only. */
	s->header.len = authn_ar_strip(s->header.data, s->header.len,
	    s->cfg->hostname, &removed);
	if (removed > 0)
		log_info(s->sid, "smtp.auth_results_removed count=%zu",
		    removed);
	header_check(s, is_cut);
	s->is_header_done = true;
	smtp_dmarc_header(s);
	if (dkim_start(s, is_cut))
		return;
	if (s->is_dmarc_pending && !is_cut && hold_start(s))
		return;
	header_write(s);
}

/* Does the field start with this name (white space before the colon,
 * RFC 5322 §4.5.8)? */
static bool
is_field_named(const char *f, size_t n, const char *name)
{
	size_t i = strlen(name);

	if (n < i || strncasecmp(f, name, i) != 0)
		return false;
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	return i < n && f[i] == ':';
}

/* Does the field start like an Authentication-Results: one (any
 * authserv-id)? */
static bool
is_ar_field_start(const char *f, size_t n)
{
	return is_field_named(f, n, "Authentication-Results");
}

/* A From: field past the first 64 KB of the header was not seen by
 * DMARC (smtp_dmarc_header reads the first part): the author is not
 * one readable domain, as with several From: fields (RFC 7489 §6.6.1),
 * or a From: hidden past the cut would get round a reject policy. */
static void
tail_from_check(struct smtp_session *s, const char *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((i == 0 || f[i - 1] == '\n') &&
		    is_field_named(f + i, n - i, "From")) {
			s->dmarc_from = AUTHN_DMARC_FROM_AMBIGUOUS;
			snprintf(s->dmarc_from_why, sizeof(s->dmarc_from_why),
			    "a From: field past the first 64 KB of the "
			    "header");
			return;
		}
	}
}

/* The first n bytes of the header buffer, complete fields, in tail
 * mode: our authserv-id's Authentication-Results removed (RFC 8601 §5),
 * the rest written, and dropped from the buffer. */
static void
header_tail_fields(struct smtp_session *s, size_t n)
{
	size_t removed = 0, kept;

	tail_from_check(s, s->header.data, n);
	kept = authn_ar_strip(s->header.data, n, s->cfg->hostname, &removed);
	if (removed > 0)
		log_info(s->sid, "smtp.auth_results_removed count=%zu",
		    removed);
	store_write(s, s->header.data, kept);
	buf_consume(&s->header, n);
	s->header_tail_start = 0;
}

/* The header section after its first 64 KB: fields are gathered in
 * the buffer (emptied by header_flush()) and, when it is full, the
 * complete ones are stripped and written (header_tail_fields), so that
 * each field is judged whole. A single field over the buffer is
 * written through, or dropped if it is an Authentication-Results: (no
 * honest one is that long, and its authserv-id could not be read). Ends
 * at the empty line; the rest is the body. */
static void
header_tail(struct smtp_session *s, const char *data, size_t n)
{
	struct buf *h = &s->header;

	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (s->is_header_tail_bol && c != ' ' && c != '\t') {
			/* A field starts; the ones before are complete. */
			s->header_tail_mode = HEADER_TAIL_KEEP;
			s->header_tail_start = h->len;
		}
		if (s->header_tail_mode != HEADER_TAIL_KEEP) {
			/* The rest of the line at once. */
			const char *nl = memchr(data + i, '\n', n - i);
			size_t k = nl ? (size_t)(nl - data) + 1 : n;

			if (s->header_tail_mode == HEADER_TAIL_PASS)
				store_write(s, data + i, k - i);
			s->is_header_tail_bol = nl != NULL;
			i = k - 1;
			continue;
		}
		s->is_header_tail_bol = c == '\n';
		if (buf_append(h, &c, 1) < 0) {
			if (s->header_tail_start == 0) {
				/* One field fills the buffer. */
				if (is_ar_field_start(h->data, h->len)) {
					log_info(s->sid, "smtp.auth_results_"
					    "removed count=1 reason=too_long");
					s->header_tail_mode = HEADER_TAIL_DROP;
				} else {
					tail_from_check(s, h->data, h->len);
					store_write(s, h->data, h->len);
					store_write(s, &c, 1);
					s->header_tail_mode = HEADER_TAIL_PASS;
				}
				buf_clear(h);
				continue;
			}
			header_tail_fields(s, s->header_tail_start);
			if (buf_append(h, &c, 1) < 0)
				panic("smtp: no room in the header buffer");
		}
		if (h->len - s->header_tail_start == 2 &&
		    memcmp(h->data + s->header_tail_start, "\r\n", 2) == 0) {
			/* The empty line: the body follows. */
			header_tail_fields(s, h->len);
			s->is_header_tail = false;
			store_write(s, data + i + 1, n - i - 1);
			return;
		}
	}
}

/* The header buffer is full: the fields before the last one are
 * checked and written with ours (header_flush); the last one, which
 * may go on past the buffer (its authserv-id too), carries on in tail
 * mode with everything after it. */
static void
header_cut(struct smtp_session *s)
{
	struct buf *h = &s->header;
	size_t b = h->len - 1, np;
	char *partial;

	/* b: where the last field starts (a line not starting with white
	 * space), 0 for a single field. */
	while (b > 0 && !(h->data[b - 1] == '\n' && h->data[b] != ' ' &&
	    h->data[b] != '\t'))
		b--;
	np = h->len - b;
	partial = xmalloc(np);
	memcpy(partial, h->data + b, np);
	h->len = b;
	header_flush(s, true);
	s->is_header_tail = true;
	s->is_header_tail_bol = false;
	s->header_tail_mode = HEADER_TAIL_KEEP;
	s->header_tail_start = 0;
	header_tail(s, partial, np);
	free(partial);
}

/* Takes decoded message bytes. */
static void
message_bytes(struct smtp_session *s, const char *data, size_t n)
{
	s->size += n;
	if (s->size > s->cfg->message_size)
		s->is_oversize = true;
	if (s->is_header_tail) {
		header_tail(s, data, n);
		return;
	}
	if (s->is_header_done) {
		body_write(s, data, n);
		return;
	}
	/* Keep the header section to see which fields it has; a header
	 * larger than the buffer is written in parts (header_cut). */
	for (size_t i = 0; i < n; i++) {
		struct buf *h = &s->header;

		if (buf_append(h, data + i, 1) < 0) {
			header_cut(s);
			header_tail(s, data + i, n - i);
			return;
		}
		if ((h->len == 2 && memcmp(h->data, "\r\n", 2) == 0) ||
		    (h->len >= 4 && memcmp(h->data + h->len - 4, "\r\n\r\n",
		    4) == 0)) {
			header_flush(s, false);
			body_write(s, data + i + 1, n - i - 1);
			return;
		}
	}
}

static void
on_delivered(void *arg, const struct store_delivery_result *results,
    size_t n)
{
	struct smtp_session *s = arg;
	enum store_err err = STORE_OK;

	for (size_t i = 0; i < n; i++) {
		if (results[i].err != STORE_OK && err != STORE_OVER_QUOTA)
			err = results[i].err;
	}
	/* The delivery is atomic: all of it is on disk, or none. Counted
	 * even when the client has left meanwhile (it is stored). The
	 * queued recipients share one result, of mailbox 0 (store.h). */
	if (err == STORE_OK) {
		for (size_t i = 0; i < n; i++) {
			if (results[i].mailbox != 0)
				metrics_add(METRIC_DELIVERIES_LOCAL, 1);
		}
		metrics_add(METRIC_RECIPIENTS_QUEUED, s->delivery_queued);
	}
	/* The client may have left while the store worked. */
	if (!net_conn_unwait(s->conn))
		return;
	if (err == STORE_OK) {
		metrics_add(METRIC_MESSAGES_RECEIVED, 1);
		log_info(s->sid, "smtp.delivered from=<%s> rcpts=%zu size=%llu",
		    s->mail_from, s->nrcpts, (unsigned long long)s->size);
		smtp_reply(s, "250 2.0.0 OK: queued as %s", s->sid);
	} else if (err == STORE_OVER_QUOTA) {
		log_info(s->sid, "smtp.not_delivered reason=over_quota");
		smtp_reply(s, "452 4.2.2 Mailbox full, try again later");
	} else if (err == STORE_NO_SPACE) {
		/* RFC 3463 §3.4: X.3.1, the system's storage is full. */
		log_error(s->sid, "smtp.not_delivered reason=no_space");
		smtp_reply(s, "452 4.3.1 Insufficient system storage, try "
		    "again later");
	} else {
		log_error(s->sid, "smtp.not_delivered error=\"%s\"",
		    store_err_text(err));
		smtp_reply(s, "451 4.3.0 Temporary failure storing the "
		    "message, try again later");
	}
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_READY);
}

/* Does account j of recipient i also appear before it in the envelope? */
static bool
is_account_earlier(const struct smtp_session *s, size_t i, size_t j)
{
	int64_t acc = s->rcpts[i].accounts[j];

	for (size_t a = 0; a <= i; a++) {
		size_t n = a == i ? j : s->rcpts[a].naccounts;

		for (size_t b = 0; b < n; b++) {
			if (s->rcpts[a].accounts[b] == acc)
				return true;
		}
	}
	return false;
}

/* The DKIM results are in: they go into our header, the header and the
 * held body on their way (the milters' spool or the delivery), and the
 * message goes on as message_end() would have sent it. */
static void
on_dkim(void *arg, const struct authn_dkim_verdict *v)
{
	struct smtp_session *s = arg;
	char results[128];
	size_t o = 0;

	if (!net_conn_unwait(s->conn))
		return;
	results[0] = '\0';
	for (size_t i = 0; i < v->n && o + 1 < sizeof(results); i++)
		o += (size_t)snprintf(results + o, sizeof(results) - o, "%s%s",
		    i ? "," : "", authn_dkim_status_name(v->sigs[i].result));
	log_info(s->sid, "smtp.dkim results=%s d=%s reason=\"%s\"%s", results,
	    v->sigs[0].domain, v->sigs[0].reason, v->ignored > 0 ?
	    " more_ignored=yes" : "");
	s->dkim_verdict = *v;
	if (s->ar == NULL)
		s->ar = authn_ar_new(s->cfg->hostname);
	authn_dkim_ar_add(s->ar, v);
	if (s->is_dmarc_pending) {
		smtp_dmarc_start(s);
		return;
	}
	smtp_message_release(s);
}

void
smtp_message_release(struct smtp_session *s)
{
	if (s->is_dkim_held) {
		s->is_dkim_held = false;
		header_write(s);
		dkim_spool_copy(s);
	}
	if (s->is_write_failed) {
		smtp_reply(s, "452 4.3.1 Insufficient system storage, try "
		    "again later");
		s->header_refusal[0] = '\0';
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_READY);
		return;
	}
	if (s->milter_spool >= 0)
		smtp_milter_message(s);
	else
		smtp_message_store(s, NULL);
}

/* The whole message is in: answer, or hand it to the store. */
static void
message_end(struct smtp_session *s)
{
	if (!s->is_header_done)
		header_flush(s, false);
	if (s->is_header_tail) {
		/* The message ended inside its header section. */
		if (s->header_tail_mode == HEADER_TAIL_KEEP)
			header_tail_fields(s, s->header.len);
		s->is_header_tail = false;
	}
	if (s->is_oversize) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit of "
		    "%llu bytes", (unsigned long long)s->cfg->message_size);
	} else if (s->is_write_failed) {
		smtp_reply(s, "452 4.3.1 Insufficient system storage, try "
		    "again later");
	} else if (s->nrcpts == 0) {
		smtp_reply(s, "554 5.5.1 No valid recipients");
	} else if (s->header_refusal[0] != '\0') {
		/* Nothing was stored: the delivery is dropped below. */
		smtp_reply(s, "%s", s->header_refusal);
	} else if (s->is_milter_discard) {
		/* A milter said DISCARD at MAIL or RCPT: the client hears
		 * success, nothing is kept (as in Postfix). */
		log_info(s->sid, "smtp.discarded by=milter");
		smtp_reply(s, "250 2.0.0 OK: queued as %s", s->sid);
	} else if (s->is_dkim_held && s->dkim == NULL) {
		/* Held for DMARC alone (unsigned). */
		smtp_dmarc_start(s);
		return;
	} else if (s->is_dkim_held) {
		struct authn_dkim *d = s->dkim;

		/* Keys are fetched off the loop; the reply waits. */
		s->dkim = NULL;
		smtp_set_state(s, SMTP_STATE_WAIT);
		net_conn_wait(s->conn);
		authn_dkim_submit(s->ctx->authn, d,
		    (unsigned)s->cfg->dkim_timeout, net_conn_base(s->conn),
		    on_dkim, s);
		return;
	} else if (s->is_dmarc_pending) {
		smtp_dmarc_start(s);
		return;
	} else if (s->milter_spool >= 0) {
		smtp_milter_message(s);
		return;
	} else {
		smtp_message_store(s, NULL);
		return;
	}
	s->header_refusal[0] = '\0';
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_READY);
}

void
smtp_message_store(struct smtp_session *s, const char *mailbox)
{
	struct store_delivery *d = s->delivery;

	s->delivery_queued = 0;
	for (size_t i = 0; i < s->nrcpts; i++) {
		const struct smtp_rcpt *r = &s->rcpts[i];

		for (size_t j = 0; j < r->naccounts; j++) {
			/* One copy per account, however many of its
			 * addresses the envelope names. */
			if (!is_account_earlier(s, i, j))
				store_delivery_add(d, r->accounts[j], mailbox,
				    0, NULL, 0);
		}
		for (size_t j = 0; j < r->nexternal; j++)
			store_delivery_queue(d, s->mail_from, r->external[j],
			    s->dsn_envelope, r->dsn);
		s->delivery_queued += r->nexternal;
		if (r->naccounts > 0)	/* RFC 3461 NOTIFY=SUCCESS */
			store_delivery_notify(d, s->mail_from, r->address,
			    s->dsn_envelope, r->dsn);
	}
	store_delivery_set_authenticated(d, s->is_authenticated);
	if (s->data.bare_newlines > 0)
		log_info(s->sid, "smtp.bare_newlines count=%llu "
		    "result=normalised",
		    (unsigned long long)s->data.bare_newlines);
	store_delivery_set_atomic(d);
	s->delivery = NULL;
	if (store_delivery_submit(d, net_conn_base(s->conn), on_delivered,
	    s) == 0) {
		smtp_set_state(s, SMTP_STATE_WAIT);
		net_conn_wait(s->conn);
		return;
	}
	smtp_reply(s, "451 4.3.0 Temporary failure storing the message, try "
	    "again later");
	s->header_refusal[0] = '\0';
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_READY);
}

static int
delivery_start(struct smtp_session *s)
{
	enum store_err err;

	if (s->delivery != NULL)
		return 0;
	s->delivery = store_delivery_new(s->ctx->store, &err);
	if (s->delivery != NULL && s->milters != NULL &&
	    !s->is_milter_discard) {
		s->milter_spool = store_spool_open(s->ctx->store, &err);
		s->milter_spool_len = 0;
		if (s->milter_spool < 0)
			store_delivery_abort(&s->delivery);
	}
	if (s->delivery == NULL) {
		log_error(s->sid, "smtp.store_failed error=\"%s\"",
		    store_err_text(err));
		if (err == STORE_NO_SPACE)
			smtp_reply(s, "452 4.3.1 Insufficient system storage, "
			    "try again later");
		else
			smtp_reply(s, "451 4.3.0 Temporary failure, try again "
			    "later");
		return -1;
	}
	return 0;
}

void
smtp_cmd_data(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	if (len != 0) {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->nrcpts == 0) {
		/* RFC 2920 §3.1: after refused recipients, DATA fails. */
		smtp_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->delivery != NULL) {
		smtp_error(s, "503 5.5.1 DATA after BDAT is not allowed");
		return;
	}
	if (delivery_start(s) < 0)
		return;
	smtp_data_init(&s->data);
	s->header_refusal[0] = '\0';
	smtp_set_state(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void
smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len)
{
	char *end;
	unsigned long long n;
	const char *rest;

	/* RFC 3030 §2: BDAT chunk-size [LAST]. */
	if (len == 0 || args[0] < '0' || args[0] > '9') {
		smtp_error(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	n = strtoull(args, &end, 10);
	rest = end;
	while (rest < args + len && *rest == ' ')
		rest++;
	if ((size_t)(rest - args) == len) {
		s->is_bdat_last = false;
	} else if ((size_t)(args + len - rest) == 4 &&
	    strncasecmp(rest, "LAST", 4) == 0) {
		s->is_bdat_last = true;
	} else {
		smtp_error(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	if (s->size == 0 && !s->is_header_done) {
		/* The first chunk of a message. */
		smtp_data_init(&s->data);
		s->header_refusal[0] = '\0';
	}
	if (s->nrcpts > 0 && delivery_start(s) < 0)
		return;
	/* Whatever happens, the chunk's bytes are read: they are not
	 * commands (RFC 3030 §2). */
	s->bdat_left = n;
	smtp_set_state(s, SMTP_STATE_BDAT);
}

/* Takes n raw bytes of a BDAT chunk, line ends normalised as in DATA. */
static void
bdat_bytes(struct smtp_session *s, const char *p, size_t n)
{
	char out[2 * CHUNK];

	while (n > 0) {
		size_t k = n < CHUNK ? n : CHUNK;

		message_bytes(s, out, smtp_data_bdat_feed(&s->data, p, k,
		    out));
		p += k;
		n -= k;
	}
}

/* A BDAT chunk has been read. */
static void
bdat_chunk_end(struct smtp_session *s)
{
	if (s->is_bdat_discard) {
		s->is_bdat_discard = false;
		smtp_set_state(s, s->bdat_return_state);
		return;
	}
	if (s->is_bdat_last) {
		char crlf[2];

		message_bytes(s, crlf, smtp_data_bdat_end(&s->data, crlf));
		message_end(s);
		return;
	}
	if (s->nrcpts == 0) {
		smtp_error(s, "554 5.5.1 No valid recipients");
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_READY);
		return;
	}
	smtp_reply(s, "250 2.0.0 %llu octets received",
	    (unsigned long long)s->size);
	smtp_set_state(s, SMTP_STATE_RCPT);
}

void
smtp_message_input(struct smtp_session *s, struct buf *in)
{
	while (s->reader.off < in->len) {
		const char *p = in->data + s->reader.off;
		size_t avail = in->len - s->reader.off;

		if (s->state == SMTP_STATE_BDAT) {
			size_t take = avail < s->bdat_left ? avail :
			    (size_t)s->bdat_left;

			if (take > 0 && !s->is_bdat_discard)
				bdat_bytes(s, p, take);
			s->reader.off += take;
			s->bdat_left -= take;
			if (s->bdat_left == 0) {
				bdat_chunk_end(s);
				return;
			}
		} else {
			char out[2 * CHUNK + 4];
			size_t used, olen;
			enum parse_rc rc;

			if (avail > CHUNK)
				avail = CHUNK;
			rc = smtp_data_feed(&s->data, p, avail, &used, out,
			    &olen);
			message_bytes(s, out, olen);
			s->reader.off += used;
			if (rc == PARSE_DONE) {
				message_end(s);
				return;
			}
		}
	}
	/* A BDAT 0 chunk ends with no bytes at all. */
	if (s->state == SMTP_STATE_BDAT && s->bdat_left == 0)
		bdat_chunk_end(s);
}
