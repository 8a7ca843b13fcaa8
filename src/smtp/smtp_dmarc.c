/*
 * smtp_dmarc: DMARC (RFC 7489) of a message on port 25 that SPF checked:
 * the author domain read with the header, the SPF result of MAIL FROM and
 * DKIM's verdict, run on authn's pool at the end of the message; its
 * verdict applied as the operator chose ([dmarc] reject, quarantine); the
 * result added to our Authentication-Results, which waits with the
 * message (smtp_cmd_data.c holds header and body as for DKIM) and is
 * written when the message is released.
 *
 * What refuses a message: a fail whose disposition is reject (after pct=
 * and t=y) with `[dmarc] reject = yes`: 550 5.7.1 naming the domain; a
 * From: that names several domains or comes in several fields
 * (§6.6.1: no single author domain to check, and a way around a reject
 * policy) with reject on: 550 5.7.1; a temperror with reject on: 451
 * 4.7.1 (the policy could not be read: it might be reject). A DNS error
 * never refuses mail for good. A fail whose disposition is quarantine
 * (or reject with `reject = no`) goes to each recipient's Junk with
 * `[dmarc] quarantine = yes`. A message without a From: domain is
 * marked dmarc=permerror and delivered.
 */
#include "smtp/smtp_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mime/mime.h"

/* Is DMARC to be checked for this message? SPF was, [dmarc] check is on
 * and the list was loaded at start. */
static bool
is_dmarc_wanted(const struct smtp_session *s)
{
	return s->has_spf_result && s->cfg->is_dmarc_check &&
	    s->ctx->authn != NULL && authn_psl(s->ctx->authn) != NULL;
}

void
smtp_dmarc_header(struct smtp_session *s)
{
	char **addrs = NULL;
	size_t nfields = 0;
	int rc;

	s->is_dmarc_pending = is_dmarc_wanted(s);
	if (!s->is_dmarc_pending)
		return;
	rc = mime_header_mailboxes(s->header.data, s->header.len, "From",
	    &addrs, &nfields);
	s->dmarc_from = authn_dmarc_from_domain(rc, addrs, nfields,
	    s->dmarc_domain, sizeof(s->dmarc_domain), s->dmarc_from_why,
	    sizeof(s->dmarc_from_why));
	if (rc == 0)
		mime_strings_free(&addrs);
}

/* A refusal at the end of the data. */
static void
refuse(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
refuse(struct smtp_session *s, const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_info(s->sid, "smtp.refused reason=dmarc reply=\"%s\"", text);
	smtp_reply(s, "%s", text);
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_READY);
}

static void
on_dmarc(void *arg, const struct authn_dmarc_outcome *o)
{
	struct smtp_session *s = arg;
	const struct config *cfg = s->cfg;
	char comment[300];
	bool is_junk = false;

	if (!net_conn_unwait(s->conn))
		return;
	log_info(s->sid, "smtp.dmarc from_domain=%s result=%s policy=%s "
	    "tag=%s disposition=%s policy_domain=%s spf_aligned=%d "
	    "dkim_aligned=%d reason=\"%s\"", o->from_domain,
	    authn_dmarc_result_name(o->result),
	    authn_dmarc_policy_name(o->policy), o->policy_tag,
	    authn_dmarc_policy_name(o->disposition), o->policy_domain,
	    o->is_spf_aligned, o->is_dkim_aligned, o->reason);
	authn_dmarc_comment(o, comment, sizeof(comment));
	authn_ar_add(s->ar, "dmarc", authn_dmarc_result_name(o->result),
	    comment, "header.from", o->from_domain);
	if (o->result == AUTHN_DMARC_FAIL &&
	    o->disposition == AUTHN_DMARC_POLICY_REJECT &&
	    cfg->is_dmarc_reject) {
		refuse(s, "550 5.7.1 The domain %.100s asks that mail from it "
		    "that fails DMARC be rejected, and this message fails: "
		    "neither its SPF nor a DKIM signature is of %.100s",
		    o->from_domain, o->from_domain);
		return;
	}
	if (o->result == AUTHN_DMARC_TEMPERROR && cfg->is_dmarc_reject) {
		refuse(s, "451 4.7.1 The DMARC policy of %.100s could not be "
		    "read (DNS error), try again later", o->from_domain);
		return;
	}
	if (o->result == AUTHN_DMARC_FAIL && cfg->is_dmarc_quarantine &&
	    o->disposition != AUTHN_DMARC_POLICY_NONE)
		is_junk = true;
	if (is_junk) {
		log_info(s->sid, "smtp.dmarc_quarantine from_domain=%s "
		    "mailbox=Junk", o->from_domain);
		store_delivery_set_junk(s->delivery, true);
	}
	smtp_message_release(s);
}

void
smtp_dmarc_start(struct smtp_session *s)
{
	struct authn_dmarc_dkim dkim[AUTHN_DMARC_DKIM_MAX];
	struct authn_dmarc_request req;
	uint16_t r = 0;

	s->is_dmarc_pending = false;
	/* RFC 7489 §6.6.1: a message without exactly one readable author
	 * domain (none, several, or a From: field that does not parse) is
	 * typically rejected: each is a way around the reject policy of the
	 * domain a reader sees ("From: ceo@bank.example;" parses for no
	 * one here, and a mail client shows it all the same). */
	if (s->dmarc_from != AUTHN_DMARC_FROM_OK) {
		log_info(s->sid, "smtp.dmarc result=permerror reason=\"%s\"",
		    s->dmarc_from_why);
		authn_ar_add(s->ar, "dmarc", "permerror", s->dmarc_from_why,
		    NULL, NULL);
		if (s->cfg->is_dmarc_reject) {
			refuse(s, "550 5.7.1 The message has %s; DMARC needs "
			    "exactly one author domain in one From: field "
			    "(RFC 7489 section 6.6.1)", s->dmarc_from_why);
			return;
		}
		if (s->cfg->is_dmarc_quarantine)
			store_delivery_set_junk(s->delivery, true);
		smtp_message_release(s);
		return;
	}
	/* pct= sampling (§6.6.4): a uniform draw of 0..99. */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = 0;
	req = (struct authn_dmarc_request){
		.from_domain = s->dmarc_domain,
		.spf = s->spf_result,
		.spf_domain = s->spf_domain,
		.dkim = dkim,
		.ndkim = authn_dmarc_dkim_from(s->has_dkim_verdict ?
		    &s->dkim_verdict : NULL, dkim, AUTHN_DMARC_DKIM_MAX),
		.sample = r % 100,
	};
	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
	authn_dmarc_submit(s->ctx->authn, &req,
	    (unsigned)s->cfg->dmarc_timeout, net_conn_base(s->conn), on_dmarc,
	    s);
}
