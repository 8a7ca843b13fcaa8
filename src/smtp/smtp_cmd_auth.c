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
auth_end(struct smtp_session *s)
{
	auth_sasl_free(&s->sasl);
	smtp_set_state(s, SMTP_STATE_READY);
}

static void
on_auth_done(void *arg, enum auth_result result,
    const struct auth_identity *id)
{
	struct smtp_session *s = arg;

	if (!net_conn_unwait(s->conn))
		return;
	auth_end(s);
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

/* Feeds one SASL message (base64) and acts on the mechanism's answer. */
static void
auth_feed(struct smtp_session *s, const char *b64, size_t len)
{
	const char *challenge;
	enum auth_step step;

	step = auth_sasl_step(s->sasl, b64, len, &challenge,
	    net_conn_base(s->conn), on_auth_done, s);
	switch (step) {
	case AUTH_STEP_CHALLENGE:
		smtp_set_state(s, SMTP_STATE_AUTH);
		smtp_reply(s, "334 %s", challenge);
		break;
	case AUTH_STEP_WAIT:
		smtp_set_state(s, SMTP_STATE_WAIT);
		net_conn_wait(s->conn);
		break;
	case AUTH_STEP_MALFORMED:
		auth_end(s);
		smtp_error(s, "501 5.5.2 Cannot decode the response");
		break;
	}
}

void
smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len)
{
	const char *sp = memchr(args, ' ', len);
	size_t mlen = sp ? (size_t)(sp - args) : len;
	char mech[32];

	if (s->is_authenticated) {
		smtp_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->ctx == NULL || s->ctx->auth == NULL) {
		smtp_error(s, "502 5.5.1 AUTH is not available here");
		return;
	}
	if (mlen == 0 || mlen >= sizeof(mech)) {
		smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		return;
	}
	memcpy(mech, args, mlen);
	mech[mlen] = '\0';
	s->sasl = auth_sasl_new(s->ctx->auth, mech, is_plain_ok(s),
	    AUTH_PROTO_SUBMISSION, net_conn_peer(s->conn), s->sid);
	if (s->sasl == NULL) {
		/* Is it a mechanism we have, just not before TLS? */
		struct auth_sasl *probe = is_plain_ok(s) ? NULL :
		    auth_sasl_new(s->ctx->auth, mech, true,
		    AUTH_PROTO_SUBMISSION, "", NULL);

		if (probe != NULL) {
			auth_sasl_free(&probe);
			smtp_error(s, "538 5.7.11 Encryption required for the "
			    "requested authentication mechanism");
		} else
			smtp_error(s, "504 5.5.4 Unrecognized authentication "
			    "type");
		return;
	}
	if (sp != NULL) {
		/* RFC 4954 §4: the initial response. */
		auth_feed(s, sp + 1, len - mlen - 1);
		return;
	}
	smtp_set_state(s, SMTP_STATE_AUTH);
	smtp_reply(s, "334 %s", auth_sasl_first_challenge(s->sasl));
}

void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 §4: the client cancels. */
		auth_end(s);
		smtp_error(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	auth_feed(s, line, len);
}
