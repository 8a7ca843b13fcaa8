/*
 * smtp_cmd_auth: AUTH (RFC 4954) through the shared SASL mechanisms of
 * src/auth. Plaintext mechanisms only over TLS, unless the configuration
 * allows them for loopback testing.
 */
#include "smtp/smtp_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

static bool
is_plain_ok(const struct smtp_session *s)
{
	return is_net_conn_tls(s->conn) || s->cfg->allow_plaintext_auth;
}

bool
is_smtp_auth_offered(const struct smtp_session *s)
{
	return s->ctx != NULL && s->ctx->auth != NULL && is_plain_ok(s) &&
	    !s->is_authenticated;
}

static void
on_challenge(void *arg, const char *b64)
{
	struct smtp_session *s = arg;

	smtp_set_state(s, SMTP_STATE_AUTH);
	smtp_reply(s, "334 %s", b64);
}

static void
on_wait(void *arg)
{
	struct smtp_session *s = arg;

	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
}

static bool
on_resumed(void *arg)
{
	struct smtp_session *s = arg;

	return net_conn_unwait(s->conn);
}

static void
on_end(void *arg, enum auth_exchange_end how, enum auth_result result,
    const struct auth_identity *id)
{
	struct smtp_session *s = arg;

	smtp_set_state(s, SMTP_STATE_READY);
	switch (how) {
	case AUTH_X_UNKNOWN_MECH:
		smtp_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	case AUTH_X_NEEDS_TLS:
		smtp_error(s, "538 5.7.11 Encryption required for the "
		    "requested authentication mechanism");
		return;
	case AUTH_X_MALFORMED:
		smtp_error(s, "501 5.5.2 Cannot decode the response");
		return;
	case AUTH_X_CANCELLED:
		/* RFC 4954 §4 */
		smtp_error(s, "501 5.0.0 Authentication cancelled");
		return;
	case AUTH_X_DONE:
		break;
	}
	switch (result) {
	case AUTH_OK:
		s->is_authenticated = true;
		s->id = *id;
		net_conn_logged_in(s->conn);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_LOCKED:
		smtp_error(s, "454 4.7.0 Too many failed logins: temporarily "
		    "locked, try again later");
		break;
	case AUTH_PROTO_DISABLED:
		smtp_error(s, "535 5.7.8 Sending mail (SMTP submission) is "
		    "disabled for this account");
		break;
	case AUTH_TEMP:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure, "
		    "try again later");
		break;
	default:
		smtp_error(s, "535 5.7.8 Authentication credentials invalid");
		break;
	}
}

const struct auth_exchange_ops smtp_auth_ops = {
	.challenge = on_challenge,
	.wait = on_wait,
	.resumed = on_resumed,
	.end = on_end,
};

void
smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len)
{
	const char *sp = memchr(args, ' ', len);
	size_t mlen = sp ? (size_t)(sp - args) : len;
	struct auth_exchange_args a = {
		.auth = s->ctx != NULL ? s->ctx->auth : NULL,
		.is_plain_ok = is_plain_ok(s),
		.proto = AUTH_PROTO_SUBMISSION,
		.peer = net_conn_peer(s->conn),
		.sid = s->sid,
		.base = net_conn_base(s->conn),
	};

	if (s->is_authenticated) {
		smtp_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (a.auth == NULL) {
		smtp_error(s, "502 5.5.1 AUTH is not available here");
		return;
	}
	if (mlen == 0) {
		smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		return;
	}
	/* RFC 4954 §4: the initial response follows the mechanism. */
	auth_exchange_start(&s->auth, &a, args, mlen, sp ? sp + 1 : NULL,
	    sp ? len - mlen - 1 : 0);
}

void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	auth_exchange_line(&s->auth, line, len);
}
