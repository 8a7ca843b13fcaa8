/*
 * imap_cmd_quota: the QUOTA extension (RFC 9208): GETQUOTA, GETQUOTAROOT
 * and SETQUOTA. Every account has one quota root, "", holding all its
 * mailboxes, with the resources STORAGE (in units of 1024 octets, RFC 9208
 * §5.1) and MESSAGE (§5.2) from the account's quota_bytes and
 * quota_messages (postern user set ADDRESS quota=... quota_messages=...).
 * A resource without a limit is not listed; an account without any limit
 * has no quota root (the quota-list of RFC 9208 §6 is never empty).
 * SETQUOTA is for administrators only: no QUOTASET capability, and the
 * command answers NO saying how to set a quota.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

/* The account's limits and usage. Returns 0, or -1 with *err_out set. */
static int
quota_read(struct imap_session *s, uint64_t *qbytes_out,
    uint64_t *qmsgs_out, uint64_t *bytes_out, uint64_t *msgs_out,
    enum store_err *err_out)
{
	struct store_account a;

	if (store_account_get_by_id(s->ctx->store, s->id.account, &a,
	    err_out) < 0)
		return -1;
	*qbytes_out = a.quota_bytes;
	*qmsgs_out = a.quota_messages;
	store_account_deinit(&a);
	return store_account_usage(s->ctx->store, s->id.account, bytes_out,
	    msgs_out, err_out);
}

static bool
has_quota_root(uint64_t qbytes, uint64_t qmsgs)
{
	return qbytes != 0 || qmsgs != 0;
}

/* '* QUOTA "" (STORAGE used limit MESSAGE used limit)'. STORAGE usage is
 * rounded up and its limit down, so that a client never sees room that
 * is not there. */
static void
quota_write(struct imap_session *s, uint64_t qbytes, uint64_t qmsgs,
    uint64_t bytes, uint64_t msgs)
{
	bool is_first = true;

	imap_printf(s, "* QUOTA \"\" (");
	if (qbytes != 0) {
		imap_printf(s, "STORAGE %llu %llu",
		    (unsigned long long)((bytes + 1023) / 1024),
		    (unsigned long long)(qbytes / 1024));
		is_first = false;
	}
	if (qmsgs != 0)
		imap_printf(s, "%sMESSAGE %llu %llu", is_first ? "" : " ",
		    (unsigned long long)msgs, (unsigned long long)qmsgs);
	imap_printf(s, ")\r\n");
}

void
imap_cmd_getquota(struct imap_session *s, const struct imap_cmd *cmd)
{
	uint64_t qbytes, qmsgs, bytes, msgs;
	enum store_err err;
	const char *root;
	size_t len;

	if (cmd->nargs != 1 || !imap_arg_astring(&cmd->args[0], &root, &len)) {
		imap_done(s, "BAD", "Syntax: GETQUOTA quota-root");
		return;
	}
	if (quota_read(s, &qbytes, &qmsgs, &bytes, &msgs, &err) < 0) {
		imap_done_store_err(s, err);
		return;
	}
	if (len != 0 || !has_quota_root(qbytes, qmsgs)) {
		imap_done(s, "NO", "[NONEXISTENT] No such quota root (the "
		    "account's quota root is \"\" when it has a quota)");
		return;
	}
	quota_write(s, qbytes, qmsgs, bytes, msgs);
	imap_done(s, "OK", "GETQUOTA completed");
}

void
imap_cmd_getquotaroot(struct imap_session *s, const struct imap_cmd *cmd)
{
	uint64_t qbytes, qmsgs, bytes, msgs;
	struct store_mailbox mb;
	enum store_err err;
	char *name;

	if (cmd->nargs != 1 ||
	    (name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		imap_done(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	if (store_mailbox_get(s->ctx->store, s->id.account, name, &mb,
	    &err) < 0) {
		free(name);
		imap_done_store_err(s, err);
		return;
	}
	store_mailbox_deinit(&mb);
	if (quota_read(s, &qbytes, &qmsgs, &bytes, &msgs, &err) < 0) {
		free(name);
		imap_done_store_err(s, err);
		return;
	}
	/* RFC 9208 §4.3.2: the name as the client gave it (we send the
	 * store's spelling, which differs only in INBOX's case). */
	imap_printf(s, "* QUOTAROOT ");
	imap_write_mailbox(s, name);
	free(name);
	if (has_quota_root(qbytes, qmsgs)) {
		imap_printf(s, " \"\"\r\n");
		quota_write(s, qbytes, qmsgs, bytes, msgs);
	} else {
		imap_printf(s, "\r\n");
	}
	imap_done(s, "OK", "GETQUOTAROOT completed");
}

void
imap_cmd_setquota(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	/* RFC 9208 §4.1.3: a server without QUOTASET may refuse; quotas are
	 * the administrator's. */
	imap_done(s, "NO", "[NOPERM] Only an administrator sets quotas, with "
	    "\"postern user set ADDRESS quota=SIZE quota_messages=N\"");
}
