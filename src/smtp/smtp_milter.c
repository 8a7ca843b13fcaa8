/*
 * smtp_milter: the session's side of the milters ([listener NAME]
 * milters): MAIL, each RCPT and the message go to them before the client
 * hears our answer. A refusal is the reply of the step it was given at
 * (a RCPT refusal drops that recipient only); DISCARD answers 250 and
 * keeps nothing; the changes of end-of-message are made to the message
 * before it is stored or queued. The conversation runs off the loop
 * (milter/milter.h): the session waits as it does for SPF or the store.
 */
#include "smtp/smtp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

void
smtp_milter_reply(struct smtp_session *s, const char *reply)
{
	net_conn_write(s->conn, reply, strlen(reply));
}

static void
client_fill(struct smtp_session *s, struct milter_client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->hostname = s->cfg->hostname;
	cl->daemon_name = net_conn_listener(s->conn)->name;
	cl->addr = net_conn_peer(s->conn);
	cl->helo = s->helo;
	cl->tls_version = net_conn_tls_version(s->conn);
	cl->tls_cipher = net_conn_tls_cipher(s->conn);
	cl->auth_authen = s->is_authenticated ? s->id.address : NULL;
	cl->queue_id = s->sid;
}

static void
on_mail(void *arg, const struct milter_verdict *v)
{
	struct smtp_session *s = arg;

	if (!net_conn_unwait(s->conn))
		return;
	if (v->result == MILTER_REJECT || v->result == MILTER_TEMPFAIL) {
		log_info(s->sid, "smtp.mail from=<%s> result=milter_refused "
		    "milter=%s", s->mail_from, v->milter);
		smtp_milter_reply(s, v->reply);
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_READY);
		return;
	}
	if (v->result == MILTER_DISCARD) {
		log_info(s->sid, "smtp.mail from=<%s> result=milter_discard "
		    "milter=%s", s->mail_from, v->milter);
		s->is_milter_discard = true;
	}
	smtp_set_state(s, SMTP_STATE_MAIL);
	smtp_reply(s, "250 2.1.0 Sender OK");
}

void
smtp_milter_mail(struct smtp_session *s)
{
	struct milter_client cl;

	if (s->milters == NULL) {
		smtp_set_state(s, SMTP_STATE_MAIL);
		smtp_reply(s, "250 2.1.0 Sender OK");
		return;
	}
	client_fill(s, &cl);
	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
	milter_mail(s->milters, &cl, s->mail_from,
	    (const char *const *)s->milter_mail_args, s->nmilter_mail_args,
	    net_conn_base(s->conn), on_mail, s);
}

/* Forgets recipient i (refused or removed by a milter). */
static void
rcpt_drop(struct smtp_session *s, size_t i)
{
	struct smtp_rcpt *r = &s->rcpts[i];

	free(r->address);
	free(r->accounts);
	for (size_t j = 0; j < r->nexternal; j++)
		free(r->external[j]);
	free(r->external);
	free(r->dsn);
	memmove(s->rcpts + i, s->rcpts + i + 1,
	    (s->nrcpts - i - 1) * sizeof(*s->rcpts));
	s->nrcpts--;
}

static void
rcpt_drop_last(struct smtp_session *s)
{
	rcpt_drop(s, s->nrcpts - 1);
}

/* DELRCPT: the envelope recipients a milter removed (RFC 5321 local
 * parts compared as given, the domain in any case: as we compare them
 * everywhere, case-insensitively). */
static void
rcpts_remove(struct smtp_session *s, const struct milter_verdict *v)
{
	for (size_t d = 0; d < v->ndelrcpts; d++) {
		for (size_t i = 0; i < s->nrcpts; i++) {
			if (strcasecmp(s->rcpts[i].address,
			    v->delrcpts[d]) != 0)
				continue;
			log_info(s->sid, "smtp.rcpt to=<%s> result=milter_"
			    "removed milter=%s", s->rcpts[i].address,
			    v->milter);
			rcpt_drop(s, i);
			break;
		}
	}
}

static void
on_rcpt(void *arg, const struct milter_verdict *v)
{
	struct smtp_session *s = arg;

	if (!net_conn_unwait(s->conn))
		return;
	if (v->result == MILTER_REJECT || v->result == MILTER_TEMPFAIL) {
		log_info(s->sid, "smtp.rcpt to=<%s> result=milter_refused "
		    "milter=%s", s->rcpts[s->nrcpts - 1].address, v->milter);
		rcpt_drop_last(s);
		smtp_set_state(s, s->nrcpts > 0 ? SMTP_STATE_RCPT :
		    SMTP_STATE_MAIL);
		smtp_milter_reply(s, v->reply);
		return;
	}
	if (v->result == MILTER_DISCARD) {
		/* The whole message (libmilter's smfi_discard). */
		log_info(s->sid, "smtp.rcpt result=milter_discard milter=%s",
		    v->milter);
		s->is_milter_discard = true;
	}
	smtp_set_state(s, SMTP_STATE_RCPT);
	smtp_reply(s, "250 2.1.5 Recipient OK");
}

void
smtp_milter_rcpt(struct smtp_session *s, const char *const *args,
    size_t nargs)
{
	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
	milter_rcpt(s->milters, s->rcpts[s->nrcpts - 1].address, args, nargs,
	    net_conn_base(s->conn), on_rcpt, s);
}

static void
message_done(struct smtp_session *s)
{
	s->header_refusal[0] = '\0';
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_READY);
}

static void
on_message(void *arg, const struct milter_verdict *v)
{
	struct smtp_session *s = arg;
	enum store_err err;
	int fd;
	uint64_t len;

	if (!net_conn_unwait(s->conn))
		return;
	if (v->result == MILTER_REJECT || v->result == MILTER_TEMPFAIL) {
		log_info(s->sid, "smtp.not_delivered reason=milter milter=%s",
		    v->milter);
		smtp_milter_reply(s, v->reply);
		message_done(s);
		return;
	}
	if (v->result == MILTER_DISCARD) {
		log_info(s->sid, "smtp.discarded by=milter milter=%s",
		    v->milter);
		smtp_reply(s, "250 2.0.0 OK: queued as %s", s->sid);
		message_done(s);
		return;
	}
	rcpts_remove(s, v);
	if (s->nrcpts == 0) {
		/* Every recipient removed: nothing to deliver, as a
		 * discard. */
		log_info(s->sid, "smtp.discarded by=milter reason=no_recipients "
		    "milter=%s", v->milter);
		smtp_reply(s, "250 2.0.0 OK: queued as %s", s->sid);
		message_done(s);
		return;
	}
	fd = v->is_changed ? s->milter_out : s->milter_spool;
	len = v->is_changed ? v->out_len : s->milter_spool_len;
	if (v->is_changed)
		log_info(s->sid, "smtp.milter_changed size=%llu",
		    (unsigned long long)len);
	if (store_delivery_write_fd(s->delivery, fd, 0, len, &err) < 0) {
		log_error(s->sid, "smtp.store_write_failed error=\"%s\"",
		    store_err_text(err));
		smtp_reply(s, "452 4.3.1 Insufficient system storage, try "
		    "again later");
		message_done(s);
		return;
	}
	if (v->is_quarantined) {
		/* No hold queue here: local recipients get it in Junk; what
		 * is relayed goes on (DESIGN.md, Milters). */
		log_info(s->sid, "smtp.quarantined reason=\"%s\" milter=%s",
		    v->quarantine, v->milter);
		store_delivery_set_junk(s->delivery, true);
		smtp_message_store(s, NULL);
		return;
	}
	smtp_message_store(s, NULL);
}

void
smtp_milter_message(struct smtp_session *s)
{
	enum store_err err;

	s->milter_out = store_spool_open(s->ctx->store, &err);
	if (s->milter_out < 0) {
		log_error(s->sid, "smtp.spool_failed error=\"%s\"",
		    store_err_text(err));
		smtp_reply(s, "451 4.3.0 Temporary failure, try again later");
		message_done(s);
		return;
	}
	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
	milter_message(s->milters, s->milter_spool, s->milter_spool_len,
	    s->milter_out, s->cfg->message_size, net_conn_base(s->conn),
	    on_message, s);
}
