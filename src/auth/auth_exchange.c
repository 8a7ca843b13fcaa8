/*
 * auth_exchange: one SASL exchange (RFC 4422 §3) as every protocol drives
 * it: the mechanism with an optional initial response, challenges and
 * base64 responses line by line, "*" to cancel, and one end. SMTP AUTH
 * (RFC 4954), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034)
 * differ only in how they say things, which their auth_exchange_ops do.
 */
#include "auth/auth.h"

#include <string.h>

void
auth_exchange_init(struct auth_exchange *x, const struct auth_exchange_ops *ops,
    void *session)
{
	memset(x, 0, sizeof(*x));
	x->ops = ops;
	x->session = session;
}

void
auth_exchange_deinit(struct auth_exchange *x)
{
	auth_sasl_free(&x->sasl);
}

bool
is_auth_exchange_active(const struct auth_exchange *x)
{
	return x->sasl != NULL;
}

static void
on_result(void *arg, enum auth_result result, const struct auth_identity *id)
{
	struct auth_exchange *x = arg;

	/* The session may be gone: it is still valid, and says so. */
	if (!x->ops->resumed(x->session))
		return;
	auth_sasl_free(&x->sasl);
	x->ops->end(x->session, AUTH_X_DONE, result, id);
}

static void
feed(struct auth_exchange *x, const char *b64, size_t len)
{
	const char *challenge;

	switch (auth_sasl_step(x->sasl, b64, len, &challenge, x->base,
	    on_result, x)) {
	case AUTH_STEP_CHALLENGE:
		x->ops->challenge(x->session, challenge);
		return;
	case AUTH_STEP_WAIT:
		x->ops->wait(x->session);
		return;
	case AUTH_STEP_MALFORMED:
		auth_sasl_free(&x->sasl);
		x->ops->end(x->session, AUTH_X_MALFORMED, AUTH_FAILED, NULL);
		return;
	}
}

void
auth_exchange_start(struct auth_exchange *x, const struct auth_exchange_args *a,
    const char *mech, size_t mlen, const char *ir, size_t irlen)
{
	char name[32];

	auth_sasl_free(&x->sasl);
	x->base = a->base;
	if (a->auth == NULL || mlen == 0 || mlen >= sizeof(name)) {
		x->ops->end(x->session, AUTH_X_UNKNOWN_MECH, AUTH_FAILED, NULL);
		return;
	}
	memcpy(name, mech, mlen);
	name[mlen] = '\0';
	x->sasl = auth_sasl_new(a->auth, name, a->is_plain_ok, a->proto,
	    a->peer, a->sid);
	if (x->sasl == NULL) {
		/* Is it a mechanism we have, just not before TLS? */
		struct auth_sasl *probe = a->is_plain_ok ? NULL :
		    auth_sasl_new(a->auth, name, true, a->proto, "", NULL);
		bool has_mech = probe != NULL;

		auth_sasl_free(&probe);
		x->ops->end(x->session, has_mech ? AUTH_X_NEEDS_TLS :
		    AUTH_X_UNKNOWN_MECH, AUTH_FAILED, NULL);
		return;
	}
	if (ir != NULL) {
		/* RFC 4422 §3.3: the initial response ("=" for an empty
		 * one). */
		feed(x, ir, irlen);
		return;
	}
	x->ops->challenge(x->session, auth_sasl_first_challenge(x->sasl));
}

void
auth_exchange_line(struct auth_exchange *x, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		/* RFC 4422 §3.5: the client cancels. */
		auth_sasl_free(&x->sasl);
		x->ops->end(x->session, AUTH_X_CANCELLED, AUTH_FAILED, NULL);
		return;
	}
	feed(x, line, len);
}
