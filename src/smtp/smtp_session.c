/*
 * smtp_session: an SMTP server session (RFC 5321) on the smtp listener
 * (mail from other servers, port 25) or a submission listener (our users,
 * 587 and 465, RFC 6409). The greeting, the command loop, EHLO, RSET,
 * NOOP, QUIT, VRFY, HELP and STARTTLS live here; MAIL/RCPT, DATA/BDAT and
 * AUTH have files of their own.
 */
#include "smtp/smtp_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"

/* Client errors tolerated before the session is closed, and the count
 * from which every further error is answered slowly (a tarpit). */
#define SMTP_MAX_ERRORS 20
#define SMTP_SLOW_ERRORS 5

static void smtp_cmd_ehlo(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_helo(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_rset(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_noop(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_quit(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_vrfy(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_expn(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_help(struct smtp_session *s, const char *a, size_t n);
static void smtp_cmd_starttls(struct smtp_session *s, const char *a,
    size_t n);

#define ANY_IDLE (SMTP_STATE_FRESH | SMTP_STATE_READY | SMTP_STATE_MAIL | \
    SMTP_STATE_RCPT)
#define GREETED (SMTP_STATE_READY | SMTP_STATE_MAIL | SMTP_STATE_RCPT)

static const struct smtp_cmd commands[] = {
	{ "EHLO", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_ehlo },
	{ "HELO", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_helo },
	{ "STARTTLS", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_starttls },
	{ "AUTH", SMTP_STATE_READY, 0, smtp_cmd_auth },
	{ "MAIL", SMTP_STATE_READY, 0, smtp_cmd_mail },
	{ "RCPT", SMTP_STATE_MAIL | SMTP_STATE_RCPT, 0, smtp_cmd_rcpt },
	{ "DATA", SMTP_STATE_MAIL | SMTP_STATE_RCPT, 0, smtp_cmd_data },
	{ "BDAT", SMTP_STATE_MAIL | SMTP_STATE_RCPT, 0, smtp_cmd_bdat },
	{ "RSET", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_rset },
	{ "NOOP", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_noop },
	{ "QUIT", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_quit },
	{ "VRFY", ANY_IDLE, 0, smtp_cmd_vrfy },
	{ "EXPN", ANY_IDLE, 0, smtp_cmd_expn },
	{ "HELP", ANY_IDLE, SMTP_CMD_PRE_TLS, smtp_cmd_help },
};

static const char *
state_name(enum smtp_state st)
{
	switch (st) {
	case SMTP_STATE_FRESH: return "fresh";
	case SMTP_STATE_READY: return "ready";
	case SMTP_STATE_MAIL: return "mail";
	case SMTP_STATE_RCPT: return "rcpt";
	case SMTP_STATE_DATA: return "data";
	case SMTP_STATE_BDAT: return "bdat";
	case SMTP_STATE_AUTH: return "auth";
	case SMTP_STATE_WAIT: return "wait";
	}
	return "?";
}

void
smtp_set_state(struct smtp_session *s, enum smtp_state to)
{
	log_trace(s->sid, "smtp.state from=%s to=%s", state_name(s->state),
	    state_name(to));
	s->state = to;
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("smtp_reply: bad format");
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	net_conn_write(s->conn, line, (size_t)n + 2);
}

void
smtp_error(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", line);
	s->errors++;
	if (s->errors >= SMTP_MAX_ERRORS) {
		log_info(s->sid, "smtp.too_many_errors errors=%u", s->errors);
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing "
		    "connection", s->cfg->hostname);
		net_conn_close(s->conn);
		return;
	}
	/* A client that keeps erring waits a second per error from here
	 * on, which slows down address harvesting. */
	if (s->errors >= SMTP_SLOW_ERRORS)
		net_conn_delay(s->conn, 1000);
}

void
smtp_transaction_reset(struct smtp_session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	free(s->dsn_envelope);
	s->dsn_envelope = NULL;
	for (size_t i = 0; i < s->nrcpts; i++) {
		struct smtp_rcpt *r = &s->rcpts[i];

		free(r->address);
		free(r->accounts);
		for (size_t j = 0; j < r->nexternal; j++)
			free(r->external[j]);
		free(r->external);
		free(r->dsn);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->is_smtputf8 = false;
	s->is_8bit = false;
	authn_ar_free(&s->ar);
	authn_dkim_free(&s->dkim);
	s->is_dkim_held = false;
	if (s->dkim_spool >= 0)
		close(s->dkim_spool);
	s->dkim_spool = -1;
	s->dkim_spooled = 0;
	s->has_dkim_verdict = false;
	s->has_spf_result = false;
	free(s->spf_domain);
	s->spf_domain = NULL;
	s->is_dmarc_pending = false;
	store_delivery_abort(&s->delivery);
	buf_clear(&s->header);
	s->is_header_done = false;
	s->is_header_tail = false;
	s->size = 0;
	s->bdat_left = 0;
	s->is_bdat_last = false;
	s->is_oversize = false;
	s->is_write_failed = false;
	/* The milters hear of it before their next step (ABORT). */
	milter_abort(s->milters);
	if (s->milter_spool >= 0)
		close(s->milter_spool);
	s->milter_spool = -1;
	s->milter_spool_len = 0;
	if (s->milter_out >= 0)
		close(s->milter_out);
	s->milter_out = -1;
	for (size_t i = 0; i < s->nmilter_mail_args; i++)
		free(s->milter_mail_args[i]);
	free(s->milter_mail_args);
	s->milter_mail_args = NULL;
	s->nmilter_mail_args = 0;
	s->is_milter_discard = false;
}

static bool
is_tls_required(const struct smtp_session *s)
{
	/* Submission on a STARTTLS port: nothing but the greeting
	 * commands before TLS (RFC 8314 §3.3 prefers TLS; DESIGN.md). */
	return s->is_submission && !is_net_conn_tls(s->conn) &&
	    !s->cfg->allow_plaintext_auth;
}

static void *
smtp_session_open(struct net_conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->ctx = net_conn_ctx(c);
	s->cfg = net_conn_config(c);
	snprintf(s->sid, sizeof(s->sid), "%s", net_conn_sid(c));
	s->state = SMTP_STATE_FRESH;
	s->is_submission = net_conn_listener(c)->proto ==
	    CONFIG_PROTO_SUBMISSION;
	auth_exchange_init(&s->auth, &smtp_auth_ops, s);
	line_reader_init(&s->reader, s->cfg->line_length);
	buf_init(&s->header, 64 * 1024);
	s->milter_spool = -1;
	s->milter_out = -1;
	s->milters = milter_chain_new(s->cfg, net_conn_listener(c), s->sid);
	s->dkim_spool = -1;
	/* RFC 5321 §4.3.1: the greeting names us. */
	smtp_reply(s, "220 %s ESMTP postern", s->cfg->hostname);
	return s;
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *args, size_t len)
{
	struct net_conn *c = s->conn;
	bool can_starttls = !is_net_conn_tls(c) &&
	    net_conn_listener(c)->tls == CONFIG_TLS_STARTTLS;
	char err[128];

	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	if (smtp_helo_check(args, len, err, sizeof(err)) < 0) {
		smtp_error(s, "%s", err);
		return;
	}
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = xstrndup(args, len > 255 ? 255 : len);
	s->is_esmtp = true;
	smtp_set_state(s, SMTP_STATE_READY);
	smtp_reply(s, "250-%s Hello %s [%s]", s->cfg->hostname, s->helo,
	    net_conn_peer(c));
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	    (unsigned long long)s->cfg->message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-CHUNKING");
	smtp_reply(s, "250-DSN");
	if (can_starttls)
		smtp_reply(s, "250-STARTTLS");
	if (is_smtp_auth_offered(s))
		smtp_reply(s, "250-AUTH %s", auth_mechanisms(s->ctx->auth,
		    is_net_conn_tls(c) || s->cfg->allow_plaintext_auth));
	smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *args, size_t len)
{
	char err[128];

	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	if (smtp_helo_check(args, len, err, sizeof(err)) < 0) {
		smtp_error(s, "%s", err);
		return;
	}
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = xstrndup(args, len > 255 ? 255 : len);
	s->is_esmtp = false;
	smtp_set_state(s, SMTP_STATE_READY);
	smtp_reply(s, "250 %s", s->cfg->hostname);
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_transaction_reset(s);
	if (s->state != SMTP_STATE_FRESH)
		smtp_set_state(s, SMTP_STATE_READY);
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_reply(s, "221 2.0.0 %s Bye", s->cfg->hostname);
	net_conn_close(s->conn);
}

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	/* RFC 5321 §3.5.3: 252 neither confirms nor denies, so that VRFY
	 * cannot harvest addresses. */
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_reply(s, "502 5.5.1 EXPN is not available");
}

static void
smtp_cmd_help(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_reply(s, "214-2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT "
	    "DATA BDAT RSET NOOP QUIT VRFY HELP");
	smtp_reply(s, "214 2.0.0 Use port 587 (STARTTLS) or 465 (TLS) with "
	    "authentication to send mail");
}

static void
smtp_cmd_starttls(struct smtp_session *s, const char *args, size_t len)
{
	(void)args;
	if (len != 0) {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (is_net_conn_tls(s->conn) ||
	    net_conn_listener(s->conn)->tls != CONFIG_TLS_STARTTLS) {
		smtp_error(s, "503 5.5.1 TLS is already active or not offered "
		    "here");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (net_conn_starttls(s->conn) < 0) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	/* RFC 3207 §4.2: forget everything learned before TLS, a login
	 * included. */
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->is_esmtp = false;
	auth_exchange_deinit(&s->auth);
	s->is_authenticated = false;
	memset(&s->id, 0, sizeof(s->id));
	smtp_set_state(s, SMTP_STATE_FRESH);
	line_reader_init(&s->reader, s->reader.max);
	s->has_starttls = true;
}

/* A refused BDAT still announced its chunk: the bytes are read and
 * dropped, never taken as commands (RFC 3030 §2). */
static void
smtp_bdat_refused(struct smtp_session *s, const struct smtp_cmd *cmd,
    const char *args, size_t len)
{
	if (strcmp(cmd->name, "BDAT") != 0 || len == 0 || args[0] < '0' ||
	    args[0] > '9')
		return;
	s->bdat_left = strtoull(args, NULL, 10);
	s->bdat_return_state = s->state;
	s->is_bdat_discard = true;
	smtp_set_state(s, SMTP_STATE_BDAT);
}

static const struct smtp_cmd *
cmd_find(const char *line, size_t len, size_t *verb_len)
{
	size_t n = 0;

	while (n < len && line[n] != ' ')
		n++;
	*verb_len = n;
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strlen(commands[i].name) == n &&
		    strncasecmp(line, commands[i].name, n) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
smtp_line(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_cmd *cmd;
	size_t vlen;
	const char *args;
	size_t alen;

	if (s->state == SMTP_STATE_AUTH) {
		smtp_auth_response(s, line, len);
		return;
	}
	cmd = cmd_find(line, len, &vlen);
	if (cmd == NULL) {
		smtp_error(s, "500 5.5.2 Command not recognized");
		return;
	}
	args = line + vlen;
	alen = len - vlen;
	while (alen > 0 && *args == ' ') {
		args++;
		alen--;
	}
	while (alen > 0 && args[alen - 1] == ' ')
		alen--;
	if (!(cmd->flags & SMTP_CMD_PRE_TLS) && is_tls_required(s)) {
		smtp_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		smtp_bdat_refused(s, cmd, args, alen);
		return;
	}
	if (!(cmd->states & s->state)) {
		if (s->state == SMTP_STATE_FRESH)
			smtp_error(s, "503 5.5.1 Send EHLO or HELO first");
		else if (strcmp(cmd->name, "AUTH") == 0 && s->is_authenticated)
			smtp_error(s, "503 5.5.1 Already authenticated");
		else if (strcmp(cmd->name, "AUTH") == 0)
			smtp_error(s, "503 5.5.1 AUTH not allowed during a "
			    "mail transaction");
		else if (strcmp(cmd->name, "MAIL") == 0)
			smtp_error(s, "503 5.5.1 Nested MAIL command");
		else if (strcmp(cmd->name, "RCPT") == 0)
			smtp_error(s, "503 5.5.1 Need MAIL before RCPT");
		else
			smtp_error(s, "503 5.5.1 Need RCPT before DATA");
		smtp_bdat_refused(s, cmd, args, alen);
		return;
	}
	cmd->run(s, args, alen);
}

static void
smtp_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct smtp_session *s = arg;
	const char *line;
	size_t len;

	while (is_net_conn_feeding(c)) {
		enum parse_rc rc;

		if (s->state & (SMTP_STATE_DATA | SMTP_STATE_BDAT)) {
			smtp_message_input(s, in);
			/* Still in the message: every byte was taken. */
			if (s->state & (SMTP_STATE_DATA | SMTP_STATE_BDAT))
				break;
			continue;
		}
		rc = line_reader_next(&s->reader, in, &line, &len);
		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			smtp_error(s, "500 5.5.2 Line too long");
			continue;
		}
		smtp_line(s, line, len);
		if (s->has_starttls) {
			/* net drops the rest of the buffer (RFC 3207 §4.2). */
			s->has_starttls = false;
			return;
		}
	}
	line_reader_compact(&s->reader, in);
}

static void
smtp_session_timeout(void *arg, struct net_conn *c)
{
	struct smtp_session *s = arg;

	(void)c;
	/* RFC 5321 §4.5.3.2 allows closing; 421 says why. */
	smtp_reply(s, "421 4.4.2 %s Idle timeout, closing connection",
	    s->cfg->hostname);
}

static void
smtp_session_shutdown(void *arg, struct net_conn *c)
{
	struct smtp_session *s = arg;

	(void)c;
	smtp_reply(s, "421 4.3.2 %s Server shutting down, try again later",
	    s->cfg->hostname);
}

/* net calls this once the connection is gone and no callback is awaited
 * (net.h): nothing else frees a session. */
static void
smtp_session_close(void *arg)
{
	struct smtp_session *s = arg;

	smtp_transaction_reset(s);
	milter_chain_free(&s->milters);
	auth_exchange_deinit(&s->auth);
	buf_deinit(&s->header);
	free(s->helo);
	free(s);
}

static void
smtp_session_refuse(struct net_conn *c, const char *reason)
{
	net_conn_printf(c, "421 4.7.0 %s %s\r\n", net_conn_config(c)->hostname,
	    reason);
}

const struct net_session_ops smtp_session_ops = {
	.open = smtp_session_open,
	.input = smtp_session_input,
	.timeout = smtp_session_timeout,
	.shutdown = smtp_session_shutdown,
	.close = smtp_session_close,
	.refuse = smtp_session_refuse,
};
