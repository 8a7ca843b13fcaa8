/*
 * queue_dsn: delivery status notifications (RFC 3464) for mail the queue
 * could not deliver, or not yet, and the success reports RFC 3461 NOTIFY
 * asks for (delivered here, relayed to a next hop without DSN): a
 * multipart/report (RFC 6522) with a
 * plain text part in neutral wording that quotes the remote server's
 * reply, the machine-readable message/delivery-status part, and the
 * original header (text/rfc822-headers) or, for RET=FULL, the message.
 */
#include "queue/queue_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/util.h"

/* RFC 5322 §3.3 date-time in UTC. */
static const char *
date_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return buf;
}

/* Copies text into o with bare LFs made CRLF, every line cut at 998
 * octets (RFC 5322 §2.1.1), and the whole ending in CRLF. */
static void
out_lines(struct queue_text *o, const char *text, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '\r')
			continue;
		if (c == '\n') {
			queue_text_add(o, "\r\n", 2);
			col = 0;
			continue;
		}
		if (col == 998) {
			queue_text_add(o, "\r\n", 2);
			col = 0;
		}
		queue_text_add(o, &c, 1);
		col++;
	}
	if (col > 0)
		queue_text_add(o, "\r\n", 2);
}

/* A value for a delivery-status field: printable ASCII on one line (RFC
 * 3464 §2.1.1 uses RFC 822 field syntax; we keep it plain). */
static void
field_value(char *dst, size_t len, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 1 < len; src++) {
		unsigned char c = (unsigned char)*src;

		dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[o] = '\0';
}

char *
queue_dsn_build(const struct queue_dsn *dsn, size_t *len_out)
{
	struct queue_text o = { 0 };
	/* A value is cut at 900 octets so that its field stays within the
	 * 998 of a line (RFC 5322 §2.1.1); a remote reply line is 512 at
	 * most anyway (RFC 5321 §4.5.3.1.5). */
	char date[64], v[901], *line;
	bool is_failed = dsn->action == QUEUE_DSN_FAILED;
	static const char *const subjects[] = {
		[QUEUE_DSN_FAILED] = "Undelivered Mail Returned to Sender",
		[QUEUE_DSN_DELAYED] = "Delayed Mail (still being retried)",
		[QUEUE_DSN_DELIVERED] = "Successful Mail Delivery Report",
		[QUEUE_DSN_RELAYED] = "Relayed Mail Delivery Report",
	};
	/* What the text part says, before and after "recipient(s)". */
	static const char *const intros[][2] = {
		[QUEUE_DSN_FAILED] = { "Your message could not be delivered "
		    "to the following recipient", ". This is a permanent "
		    "error; the message will not be sent again." },
		[QUEUE_DSN_DELAYED] = { "Your message has not been delivered "
		    "yet to the following recipient", ". The mail system "
		    "will keep trying; you do not need to send it again." },
		[QUEUE_DSN_DELIVERED] = { "Your message was delivered to the "
		    "mailbox of the following recipient", ", as you asked "
		    "to be told." },
		[QUEUE_DSN_RELAYED] = { "Your message was handed to the next "
		    "mail system for the following recipient", ". That "
		    "system does not send delivery notifications, so you "
		    "will hear no more about it from there." },
	};
	/* RFC 3464 §2.3.3. */
	static const char *const actions[] = {
		[QUEUE_DSN_FAILED] = "failed",
		[QUEUE_DSN_DELAYED] = "delayed",
		[QUEUE_DSN_DELIVERED] = "delivered",
		[QUEUE_DSN_RELAYED] = "relayed",
	};

	queue_text_printf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    dsn->reporting_mta);
	field_value(v, sizeof(v), dsn->sender);
	queue_text_printf(&o, "To: <%s>\r\n", v);
	queue_text_printf(&o, "Subject: %s\r\n", subjects[dsn->action]);
	queue_text_printf(&o, "Date: %s\r\n", date_text(dsn->now, date,
	    sizeof(date)));
	queue_text_printf(&o, "Message-ID: %s\r\n", dsn->message_id);
	/* RFC 3834 §5: a machine's report, not to be answered by one. */
	queue_text_printf(&o, "Auto-Submitted: auto-replied\r\n");
	queue_text_printf(&o, "MIME-Version: 1.0\r\n");
	queue_text_printf(&o, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
	    dsn->boundary);
	queue_text_printf(&o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	/* The human-readable part (RFC 3464 §6.2, "first component"). */
	queue_text_printf(&o, "--%s\r\n", dsn->boundary);
	queue_text_printf(&o, "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n\r\n");
	queue_text_printf(&o, "This is the mail system at host %s.\r\n\r\n",
	    dsn->reporting_mta);
	queue_text_printf(&o, "%s%s%s\r\n\r\n", intros[dsn->action][0],
	    dsn->nrcpts == 1 ? "" : "s", intros[dsn->action][1]);
	for (size_t i = 0; i < dsn->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];
		char rc[512];

		field_value(rc, sizeof(rc), r->rcpt);
		field_value(v, sizeof(v), r->diagnostic != NULL ?
		    r->diagnostic : "no reason given");
		if (r->remote_mta != NULL)
			line = xasprintf("<%s>: host %s said: %s", rc,
			    r->remote_mta, v);
		else if (r->diagnostic != NULL)
			line = xasprintf("<%s>: %s", rc, v);
		else
			line = xasprintf("<%s>", rc);
		out_lines(&o, line, strlen(line));
		queue_text_add(&o, "\r\n", 2);
		free(line);
	}

	/* RFC 3464 §2: per-message fields, then per-recipient ones. */
	queue_text_printf(&o, "--%s\r\n", dsn->boundary);
	queue_text_printf(&o, "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n\r\n");
	queue_text_printf(&o, "Reporting-MTA: dns; %s\r\n", dsn->reporting_mta);
	if (dsn->envid != NULL) {
		field_value(v, sizeof(v), dsn->envid);
		queue_text_printf(&o, "Original-Envelope-Id: %s\r\n", v);
	}
	queue_text_printf(&o, "Arrival-Date: %s\r\n", date_text(dsn->arrival, date,
	    sizeof(date)));
	for (size_t i = 0; i < dsn->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];

		queue_text_printf(&o, "\r\n");
		if (r->orcpt != NULL) {
			field_value(v, sizeof(v), r->orcpt);
			queue_text_printf(&o, "Original-Recipient: %s\r\n", v);
		}
		field_value(v, sizeof(v), r->rcpt);
		queue_text_printf(&o, "Final-Recipient: rfc822; %s\r\n", v);
		queue_text_printf(&o, "Action: %s\r\n", actions[dsn->action]);
		queue_text_printf(&o, "Status: %s\r\n", r->status);
		if (r->remote_mta != NULL)
			queue_text_printf(&o, "Remote-MTA: dns; %s\r\n",
			    r->remote_mta);
		if (r->diagnostic != NULL) {
			field_value(v, sizeof(v), r->diagnostic);
			/* A reply of ours (DNS, expiry) is no SMTP reply. */
			queue_text_printf(&o, "Diagnostic-Code: %s; %s\r\n",
			    r->remote_mta != NULL ? "smtp" : "x-postern", v);
		}
		queue_text_printf(&o, "Last-Attempt-Date: %s\r\n",
		    date_text(dsn->now, date, sizeof(date)));
	}

	queue_text_printf(&o, "\r\n--%s\r\n", dsn->boundary);
	queue_text_printf(&o, "Content-Type: %s\r\n",
	    dsn->is_full ? "message/rfc822" : "text/rfc822-headers");
	queue_text_printf(&o, "Content-Description: %s\r\n\r\n",
	    is_failed || dsn->action == QUEUE_DSN_DELAYED ? (dsn->is_full ?
	    "Undelivered message" : "Undelivered message header") :
	    dsn->is_full ? "Message" : "Message header");
	if (dsn->original_len > 0)
		out_lines(&o, dsn->original, dsn->original_len);
	queue_text_printf(&o, "\r\n--%s--\r\n", dsn->boundary);
	*len_out = o.len;
	return o.p;
}

const char *
queue_dsn_param(const char *params, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	const char *p = params;

	if (p == NULL)
		return NULL;
	while (*p != '\0') {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n > klen && p[klen] == '=' &&
		    strncasecmp(p, key, klen) == 0) {
			size_t vl = n - klen - 1;

			if (vl >= len)
				vl = len - 1;
			memcpy(buf, p + klen + 1, vl);
			buf[vl] = '\0';
			return buf;
		}
		p += n;
	}
	return NULL;
}

bool
has_queue_notify(const char *dsn_rcpt, const char *word)
{
	char v[128];
	const char *p;
	size_t wl = strlen(word);

	if (queue_dsn_param(dsn_rcpt, "NOTIFY", v, sizeof(v)) == NULL)
		return strcasecmp(word, "SUCCESS") != 0;
	/* RFC 3461 §4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY. */
	for (p = v; *p != '\0';) {
		size_t n = strcspn(p, ",");

		if (n == wl && strncasecmp(p, word, wl) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}
