/*
 * smtp_cmd_mail: MAIL and RCPT, and the policy they carry: no relaying
 * for anyone unauthenticated, submission only after AUTH, every logged-in
 * session only from the account's own addresses (RFC 6409 §4.1, §6.1),
 * limits on size (RFC 1870) and recipients (RFC 5321 §4.5.3.1.8), quotas
 * at RCPT time.
 */
#include "smtp/smtp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

/* RFC 3461 §4: the DSN parameters kept for the queue, "K=V K=V". */
static char *
params_join(const struct smtp_path *p, const char *const *keys, size_t nkeys)
{
	char *out = NULL;

	for (size_t i = 0; i < nkeys; i++) {
		bool has;
		const char *v = smtp_path_param(p, keys[i], &has);
		char *next;

		if (!has || v == NULL)
			continue;
		next = xasprintf("%s%s%s=%s", out ? out : "", out ? " " : "",
		    keys[i], v);
		free(out);
		out = next;
	}
	return out;
}

/* The ESMTP parameters as words ("SIZE=100", "SMTPUTF8") for the
 * milters. */
static char **
params_words(const struct smtp_path *p, size_t *n_out)
{
	char **w = xcalloc(p->nparams + 1, sizeof(*w));

	for (size_t i = 0; i < p->nparams; i++)
		w[i] = p->params[i].value != NULL ? xasprintf("%s=%s",
		    p->params[i].key, p->params[i].value) :
		    xstrdup(p->params[i].key);
	*n_out = p->nparams;
	return w;
}

bool
is_smtp_sender_owned(struct smtp_session *s, const char *address)
{
	char **targets = NULL;
	enum store_err err;
	bool is_owned = false;

	if (strcasecmp(address, s->id.address) == 0)
		return true;
	if (store_alias_targets(s->ctx->store, address, &targets, &err) < 0)
		return false;
	for (char **t = targets; *t != NULL; t++) {
		if (strcasecmp(*t, s->id.address) == 0)
			is_owned = true;
	}
	store_strings_free(&targets);
	return is_owned;
}

/* ---- SPF (RFC 7208) after MAIL FROM, port 25 only --------------------- */

/* Mail another server hands us on port 25: not a logged-in client (its
 * login says who it is), not a trusted network, not [spf] skip_networks
 * (loopback by default: local mail names no domain's address). */
static bool
is_spf_wanted(const struct smtp_session *s)
{
	const char *peer = net_conn_peer(s->conn);

	return !s->is_submission && !s->is_authenticated &&
	    s->ctx->authn != NULL && s->cfg->is_spf_check &&
	    !is_config_network_trusted(s->cfg, peer) &&
	    !is_config_spf_skipped(s->cfg, peer);
}

/* A comment for the header field, in the words receivers use. */
static char *
spf_comment(const struct authn_spf_outcome *o, const char *ip)
{
	const char *d = o->domain ? o->domain : "";

	switch (o->result) {
	case AUTHN_SPF_PASS:
		return xasprintf("domain of %s designates %s as permitted "
		    "sender", d, ip);
	case AUTHN_SPF_FAIL:
	case AUTHN_SPF_SOFTFAIL:
		return xasprintf("domain of %s does not designate %s as "
		    "permitted sender", d, ip);
	case AUTHN_SPF_NEUTRAL:
		return xasprintf("%s is neither permitted nor denied by "
		    "domain of %s", ip, d);
	default:
		return xstrdup(o->reason ? o->reason : "");
	}
}

/* Printable ASCII only, at most n bytes: a domain's explanation goes
 * into our reply (RFC 7208 §8.4, §6.2). */
static void
reply_text_clean(char *out, size_t n, const char *in)
{
	size_t o = 0;

	for (; *in != '\0' && o + 1 < n; in++)
		out[o++] = (*in >= ' ' && *in < 0x7f) ? *in : '?';
	out[o] = '\0';
}

static void
on_spf(void *arg, const struct authn_spf_verdict *v)
{
	struct smtp_session *s = arg;
	const char *ip = net_conn_peer(s->conn);
	const struct authn_spf_outcome *mf = &v->mailfrom, *helo = &v->helo;
	const struct authn_spf_outcome *failed = NULL;
	char *c;

	if (!net_conn_unwait(s->conn))
		return;
	log_info(s->sid, "smtp.spf ip=%s mailfrom=%s helo=%s from=<%s> "
	    "helo_name=%s reason=\"%s\"", ip,
	    authn_spf_result_name(mf->result),
	    authn_spf_result_name(helo->result), s->mail_from,
	    s->helo ? s->helo : "", mf->reason ? mf->reason : "");
	if (mf->result == AUTHN_SPF_FAIL)
		failed = mf;
	else if (helo->result == AUTHN_SPF_FAIL)
		failed = helo;
	if (s->cfg->is_spf_reject && failed != NULL) {
		char text[200];

		/* RFC 7372 §3.2: X.7.23, SPF validation failed. */
		if (failed->explanation != NULL) {
			reply_text_clean(text, sizeof(text),
			    failed->explanation);
			smtp_reply(s, "550 5.7.23 SPF of %.100s: %s",
			    failed->domain, text);
		} else {
			smtp_reply(s, "550 5.7.23 SPF: the domain %.100s does "
			    "not allow %s to send its mail (%s identity)",
			    failed->domain, ip, failed == mf &&
			    s->mail_from[0] != '\0' ? "MAIL FROM" : "HELO");
		}
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_READY);
		return;
	}
	if (s->cfg->is_spf_reject && (mf->result == AUTHN_SPF_TEMPERROR ||
	    helo->result == AUTHN_SPF_TEMPERROR)) {
		/* RFC 7372 §3.2: X.7.24, an error checking SPF; RFC 7208
		 * §8.6: a temporary one. */
		smtp_reply(s, "451 4.7.24 SPF could not be checked (DNS "
		    "error), try again later");
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_READY);
		return;
	}
	authn_ar_free(&s->ar);
	s->ar = authn_ar_new(s->cfg->hostname);
	/* For DMARC (RFC 7489 §4.1): the MAIL FROM identity's result and
	 * domain, which for <> are HELO's (RFC 7208 §2.4). */
	s->has_spf_result = true;
	s->spf_result = mf->result;
	free(s->spf_domain);
	s->spf_domain = mf->domain ? xstrdup(mf->domain) : NULL;
	/* RFC 8601 §2.7.2: smtp.mailfrom, smtp.helo. For <> the MAIL FROM
	 * identity is the HELO one (RFC 7208 §2.4): one result. */
	if (s->mail_from[0] != '\0') {
		c = spf_comment(mf, ip);
		authn_ar_add(s->ar, "spf", authn_spf_result_name(mf->result),
		    c, "smtp.mailfrom", s->mail_from);
		free(c);
	}
	c = spf_comment(helo, ip);
	authn_ar_add(s->ar, "spf", authn_spf_result_name(helo->result), c,
	    "smtp.helo", s->helo ? s->helo : "");
	free(c);
	smtp_milter_mail(s);
}

/* Checks both identities off the loop; the 250 (or the refusal) comes
 * from on_spf(). Input waits meanwhile, so pipelined RCPTs stay in the
 * buffer until then. */
static void
spf_start(struct smtp_session *s)
{
	struct authn_spf_request req = {
		.ip = net_conn_peer(s->conn),
		.helo = s->helo,
		.sender = s->mail_from,
		.receiver = s->cfg->hostname,
		.now = time(NULL),
		.timeout = (unsigned)s->cfg->spf_timeout,
	};

	smtp_set_state(s, SMTP_STATE_WAIT);
	net_conn_wait(s->conn);
	authn_spf_submit(s->ctx->authn, &req, net_conn_base(s->conn), on_spf,
	    s);
}

/* Checks MAIL's parameters; sends the error and returns -1. */
static int
mail_params_check(struct smtp_session *s, const struct smtp_path *p)
{
	for (size_t i = 0; i < p->nparams; i++) {
		const char *k = p->params[i].key, *v = p->params[i].value;

		if (strcmp(k, "SIZE") == 0) {
			uint64_t n;

			if (v == NULL || config_parse_size(v, &n) < 0 ||
			    strspn(v, "0123456789") != strlen(v)) {
				smtp_error(s, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			s->declared_size = n;
			if (n > s->cfg->message_size) {
				smtp_error(s, "552 5.3.4 Message size exceeds "
				    "fixed limit of %llu bytes",
				    (unsigned long long)s->cfg->message_size);
				return -1;
			}
		} else if (strcmp(k, "BODY") == 0) {
			if (v == NULL || (strcasecmp(v, "7BIT") != 0 &&
			    strcasecmp(v, "8BITMIME") != 0)) {
				smtp_error(s, "501 5.5.4 BODY must be 7BIT or "
				    "8BITMIME");
				return -1;
			}
			s->is_8bit = strcasecmp(v, "8BITMIME") == 0;
		} else if (strcmp(k, "SMTPUTF8") == 0) {
			if (v != NULL) {
				smtp_error(s, "501 5.5.4 SMTPUTF8 takes no "
				    "value");
				return -1;
			}
			s->is_smtputf8 = true;
		} else if (strcmp(k, "RET") == 0) {
			if (v == NULL || (strcasecmp(v, "FULL") != 0 &&
			    strcasecmp(v, "HDRS") != 0)) {
				smtp_error(s, "501 5.5.4 RET must be FULL or "
				    "HDRS");
				return -1;
			}
		} else if (strcmp(k, "ENVID") == 0 || strcmp(k, "AUTH") == 0) {
			/* ENVID is kept for DSNs; AUTH= (RFC 4954 §5) is
			 * accepted and not trusted. */
			if (v == NULL || strlen(v) > 100 ||
			    !is_smtp_dsn_param_ok(k, v)) {
				smtp_error(s, "501 5.5.4 Bad %s parameter", k);
				return -1;
			}
		} else {
			smtp_error(s, "555 5.5.4 Unsupported parameter %s", k);
			return -1;
		}
	}
	if (p->is_utf8 && !s->is_smtputf8) {
		smtp_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return -1;
	}
	return 0;
}

void
smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len)
{
	static const char *const dsn_keys[] = { "RET", "ENVID" };
	struct smtp_path p;
	char err[256];

	if (s->is_submission && !s->is_authenticated) {
		smtp_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (smtp_path_parse(args, len, "FROM:", &p, err, sizeof(err)) < 0) {
		smtp_error(s, "%s", err);
		return;
	}
	s->is_8bit = false;
	s->is_smtputf8 = false;
	s->declared_size = 0;
	if (mail_params_check(s, &p) < 0) {
		smtp_path_deinit(&p);
		return;
	}
	/* Every logged-in session, on 25 as on 587 and 465: a login is what
	 * lets the mail out as ours, so it may only carry the account's own
	 * addresses (RFC 6409 §6.1; DESIGN.md, Security posture). */
	if (s->is_authenticated && !is_smtp_sender_owned(s, p.address)) {
		log_info(s->sid, "smtp.mail from=<%s> user=<%s> "
		    "result=sender_not_owned", p.address, s->id.address);
		smtp_error(s, "553 5.7.1 Sender address <%s> is not owned by "
		    "user %s", p.address, s->id.address);
		smtp_path_deinit(&p);
		return;
	}
	if (!s->is_authenticated && p.address[0] != '\0' &&
	    is_store_domain_local(s->ctx->store,
	    smtp_address_domain(p.address)) &&
	    !is_config_network_trusted(s->cfg, net_conn_peer(s->conn))) {
		/* Our own users send after logging in; a stranger using one
		 * of our domains is forging it, and whatever we forward of
		 * it would leave as ours (DESIGN.md, Security posture). */
		log_info(s->sid, "smtp.mail from=<%s> peer=%s "
		    "result=own_domain_unauthenticated", p.address,
		    net_conn_peer(s->conn));
		smtp_error(s, "550 5.7.1 Sender address <%s> is in a domain "
		    "of this server: log in to send as it", p.address);
		smtp_path_deinit(&p);
		return;
	}
	s->mail_from = xstrdup(p.address);
	s->dsn_envelope = params_join(&p, dsn_keys, ARRAY_LEN(dsn_keys));
	if (s->milters != NULL)
		s->milter_mail_args = params_words(&p, &s->nmilter_mail_args);
	log_debug(s->sid, "smtp.mail from=<%s>", p.address);
	smtp_path_deinit(&p);
	if (is_spf_wanted(s)) {
		spf_start(s);
		return;
	}
	smtp_milter_mail(s);
}

/* Is the account over its quota if this message arrives? 0: no; 1: full
 * for now; 2: the message alone is larger than the whole quota. */
static int
quota_state(struct smtp_session *s, int64_t account)
{
	struct store_account a;
	uint64_t bytes = 0, messages = 0;
	enum store_err err;
	int state = 0;

	if (store_account_get_by_id(s->ctx->store, account, &a, &err) < 0)
		return 0;
	if (a.quota_bytes != 0 && s->declared_size > a.quota_bytes) {
		state = 2;
	} else if (store_account_usage(s->ctx->store, account, &bytes,
	    &messages, &err) == 0) {
		if (a.quota_bytes != 0 && bytes >= a.quota_bytes)
			state = 1;
		if (a.quota_messages != 0 && messages >= a.quota_messages)
			state = 1;
	}
	store_account_deinit(&a);
	return state;
}

static int
rcpt_params_check(struct smtp_session *s, const struct smtp_path *p)
{
	for (size_t i = 0; i < p->nparams; i++) {
		const char *k = p->params[i].key, *v = p->params[i].value;

		if (strcmp(k, "NOTIFY") == 0 || strcmp(k, "ORCPT") == 0) {
			if (v == NULL || strlen(v) > 500 ||
			    !is_smtp_dsn_param_ok(k, v)) {
				smtp_error(s, "501 5.5.4 Bad %s parameter", k);
				return -1;
			}
		} else {
			smtp_error(s, "555 5.5.4 Unsupported parameter %s", k);
			return -1;
		}
	}
	if (p->is_utf8 && !s->is_smtputf8) {
		smtp_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return -1;
	}
	return 0;
}

static void
rcpt_add(struct smtp_session *s, const char *address,
    const struct store_route *route, char *dsn)
{
	struct smtp_rcpt *r;

	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(*s->rcpts));
	r = &s->rcpts[s->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->dsn = dsn;
	if (route == NULL) {
		/* Relayed for an authenticated user: the queue takes it. */
		r->external = xcalloc(1, sizeof(*r->external));
		r->external[0] = xstrdup(address);
		r->nexternal = 1;
		return;
	}
	if (route->naccounts > 0) {
		r->accounts = xcalloc(route->naccounts, sizeof(*r->accounts));
		memcpy(r->accounts, route->accounts,
		    route->naccounts * sizeof(*r->accounts));
		r->naccounts = route->naccounts;
	}
	if (route->nexternal > 0) {
		r->external = xcalloc(route->nexternal, sizeof(*r->external));
		for (size_t i = 0; i < route->nexternal; i++)
			r->external[i] = xstrdup(route->external[i]);
		r->nexternal = route->nexternal;
	}
}

/* store_route_resolve(), and for postmaster the route that RFC 5321
 * §4.5.1 requires: postmaster@ each of our domains, in any case, and the
 * bare "postmaster" (§4.1.1.3) are always accepted. */
static int
route_resolve(struct smtp_session *s, const char *address,
    struct store_route *route, enum store_err *err)
{
	const char *at = strrchr(address, '@'), *how = NULL;
	size_t local = at != NULL ? (size_t)(at - address) : strlen(address);
	int rc;

	if (local != strlen(SMTP_POSTMASTER) ||
	    strncasecmp(address, SMTP_POSTMASTER, local) != 0)
		return store_route_resolve(s->ctx->store, address, route, err);
	rc = store_route_postmaster(s->ctx->store, at != NULL ? at + 1 : NULL,
	    s->cfg->postmaster, route, &how, err);
	if (rc == 0 && strcmp(how, "first_account") == 0)
		log_warn(s->sid, "smtp.rcpt to=<%s> result=postmaster_fallback "
		    "hint=\"no postmaster alias for the domain and no [server] "
		    "postmaster: delivered to the first account\"", address);
	else if (rc < 0 && *err == STORE_NOT_FOUND) {
		/* Never 550 for postmaster: with no account at all there is
		 * nowhere to put it yet, so the sender tries again later. */
		log_error(s->sid, "smtp.rcpt to=<%s> result=no_postmaster "
		    "hint=\"the server has no account to deliver "
		    "postmaster mail to\"", address);
		*err = STORE_TEMP;
	}
	return rc;
}

void
smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len)
{
	static const char *const dsn_keys[] = { "NOTIFY", "ORCPT" };
	struct smtp_path p;
	struct store_route route = { 0 };
	enum store_err err;
	char errtext[256];
	bool is_local;

	if (smtp_path_parse(args, len, "TO:", &p, errtext,
	    sizeof(errtext)) < 0) {
		smtp_error(s, "%s", errtext);
		return;
	}
	if (rcpt_params_check(s, &p) < 0)
		goto out;
	if (p.address[0] == '\0') {
		smtp_error(s, "501 5.1.3 Empty recipient address");
		goto out;
	}
	if (s->nrcpts >= s->cfg->recipients) {
		/* RFC 5321 §4.5.3.1.10: 452, and the client sends the
		 * rest in another transaction. */
		smtp_reply(s, "452 4.5.3 Too many recipients");
		goto out;
	}
	if (route_resolve(s, p.address, &route, &err) == 0) {
		is_local = true;
	} else if (err == STORE_INVALID) {
		is_local = false;
	} else if (err == STORE_NOT_FOUND) {
		log_info(s->sid, "smtp.rcpt to=<%s> result=unknown_user",
		    p.address);
		smtp_error(s, "550 5.1.1 <%s>: Recipient address rejected: "
		    "no such user here", p.address);
		goto out;
	} else {
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the "
		    "recipient, try again later");
		goto out;
	}
	if (!is_local && !s->is_authenticated) {
		log_info(s->sid, "smtp.rcpt to=<%s> peer=%s result=relay_denied",
		    p.address, net_conn_peer(s->conn));
		smtp_error(s, "554 5.7.1 <%s>: Relay access denied",
		    p.address);
		goto out;
	}
	for (size_t i = 0; is_local && i < route.naccounts; i++) {
		int q = quota_state(s, route.accounts[i]);

		if (q == 2) {
			log_info(s->sid, "smtp.rcpt to=<%s> result=over_quota",
			    p.address);
			smtp_error(s, "552 5.2.2 <%s>: Message is larger than "
			    "the mailbox quota", p.address);
			store_route_deinit(&route);
			goto out;
		}
		if (q != 0) {
			log_info(s->sid, "smtp.rcpt to=<%s> result=over_quota",
			    p.address);
			smtp_reply(s, "452 4.2.2 <%s>: Mailbox full, try again "
			    "later", p.address);
			store_route_deinit(&route);
			goto out;
		}
	}
	rcpt_add(s, p.address, is_local ? &route : NULL,
	    params_join(&p, dsn_keys, ARRAY_LEN(dsn_keys)));
	if (is_local)
		store_route_deinit(&route);
	log_debug(s->sid, "smtp.rcpt to=<%s> result=accepted local=%s",
	    p.address, is_local ? "yes" : "no");
	if (s->milters != NULL && !s->is_milter_discard) {
		size_t nw;
		char **w = params_words(&p, &nw);

		smtp_milter_rcpt(s, (const char *const *)w, nw);
		for (size_t i = 0; i < nw; i++)
			free(w[i]);
		free(w);
		goto out;
	}
	smtp_set_state(s, SMTP_STATE_RCPT);
	smtp_reply(s, "250 2.1.5 Recipient OK");
out:
	smtp_path_deinit(&p);
}
