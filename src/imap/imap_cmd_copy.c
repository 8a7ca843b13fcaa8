/*
 * imap_cmd_copy: COPY and MOVE with their UID forms (RFC 9051 §6.4.7,
 * §6.4.8; RFC 6851) answering COPYUID (RFC 4315 §3), and EXPUNGE and UID
 * EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1). The changes go through the
 * store's writer; the command ends in the store's callback, on the
 * session's thread. The EXPUNGE responses themselves come from the view's
 * sync in imap_done(), which sees the change once it is durable.
 */
#include "imap/imap_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* The reply to a failed change or delivery (STYLE: errors are translated
 * at the edge). Returns the status; *text_out gets the text. */
static const char *
store_failure(enum store_err err, const char **text_out)
{
	switch (err) {
	case STORE_NOT_FOUND:
		/* RFC 9051 §6.4.7: the client may CREATE it and retry. */
		*text_out = "[TRYCREATE] No such mailbox";
		return "NO";
	case STORE_OVER_QUOTA:
		*text_out = "[OVERQUOTA] Quota exceeded";
		return "NO";
	case STORE_NOT_ALLOWED:
		*text_out = "[LIMIT] The mailbox cannot take more messages";
		return "NO";
	case STORE_INVALID:
		*text_out = "Invalid request";
		return "BAD";
	case STORE_NO_SPACE:
		*text_out = "[UNAVAILABLE] The server is out of disk space, "
		    "try again later";
		return "NO";
	default:
		*text_out = "[UNAVAILABLE] Temporary failure, try again later";
		return "NO";
	}
}

/* "[COPYUID uidvalidity src dst]" (RFC 4315 §3): both sets list the
 * messages in the same order, with a range wherever both sides run on by
 * one. Returns a new string. */
static char *
copyuid_code(const struct store_change_result *r)
{
	/* Each UID takes at most 10 digits and a separator, per side. */
	size_t size = 2 * r->ncopied * 11 + 32, len;
	char *text = xmalloc(size);

	len = (size_t)snprintf(text, size, "[COPYUID %" PRIu32,
	    r->dst_uidvalidity);
	for (int side = 0; side < 2; side++) {
		const uint32_t *u = side == 0 ? r->src_uids : r->dst_uids;

		for (size_t i = 0; i < r->ncopied;) {
			size_t j = i;

			while (j + 1 < r->ncopied &&
			    r->src_uids[j + 1] == r->src_uids[j] + 1 &&
			    r->dst_uids[j + 1] == r->dst_uids[j] + 1)
				j++;
			if (j == i)
				len += (size_t)snprintf(text + len, size - len,
				    "%c%" PRIu32, i ? ',' : ' ', u[i]);
			else
				len += (size_t)snprintf(text + len, size - len,
				    "%c%" PRIu32 ":%" PRIu32, i ? ',' : ' ',
				    u[i], u[j]);
			i = j + 1;
		}
	}
	snprintf(text + len, size - len, "]");
	return text;
}

static void
copied(void *arg, const struct store_change_result *r)
{
	struct imap_session *s = arg;
	const char *status, *text, *what;
	char *code;

	if (!imap_resumed(s))
		return;
	if (r->err != STORE_OK) {
		if (r->err != STORE_NOT_FOUND && r->err != STORE_OVER_QUOTA)
			log_error(s->sid, "imap.copy_failed error=\"%s\"",
			    store_err_text(r->err));
		status = store_failure(r->err, &text);
		imap_done(s, status, "%s", text);
		return;
	}
	/* New messages in the selected mailbox (COPY onto itself), or
	 * messages gone from it (MOVE): the sync in imap_done() says so. */
	s->view->is_stale = true;
	what = strcmp(s->cmd->name, "MOVE") == 0 ?
	    (s->cmd->is_uid ? "UID MOVE" : "MOVE") :
	    (s->cmd->is_uid ? "UID COPY" : "COPY");
	/* Nothing copied (every message was expunged meanwhile): no
	 * COPYUID. */
	code = r->ncopied > 0 ? copyuid_code(r) : xstrdup("");
	if (strcmp(s->cmd->name, "MOVE") == 0) {
		/* RFC 6851 §4.3: COPYUID in an untagged OK, before the
		 * EXPUNGE responses that imap_done() sends. */
		if (*code != '\0')
			imap_printf(s, "* OK %s Moved\r\n", code);
		free(code);
		imap_done(s, "OK", "%s completed", what);
		return;
	}
	imap_done(s, "OK", "%s%s%s completed", code, *code ? " " : "", what);
	free(code);
}

void
imap_cmd_copy(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	bool is_move = strcmp(cmd->name, "MOVE") == 0;
	struct imap_box b;
	struct store_change c = { 0 };
	uint32_t flags = 0;
	bool has_keywords = false;
	enum store_err err;
	const char *status, *text;
	uint32_t *uids;
	size_t *idx, n;
	char *name;
	int rc;

	if (cmd->nargs != 2) {
		imap_done(s, "BAD", "Syntax: %s%s sequence-set mailbox",
		    cmd->is_uid ? "UID " : "", cmd->name);
		return;
	}
	/* RFC 6851 §3.3 with RFC 9051 §6.3.2: MOVE expunges, which EXAMINE
	 * does not allow. */
	if (is_move && v->is_readonly) {
		imap_done(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	/* RFC 4314 §4 (and RFC 6851 §4.4): MOVE sets \Deleted and expunges
	 * at the source. */
	if (is_move && (v->rights & (STORE_ACL_DELETED | STORE_ACL_EXPUNGE)) !=
	    (STORE_ACL_DELETED | STORE_ACL_EXPUNGE)) {
		imap_done(s, "NO", "[NOPERM] Permission denied");
		return;
	}
	rc = imap_view_set(s, &cmd->args[0], cmd->is_uid, &idx, &n);
	if (rc < 0) {
		imap_done(s, "BAD", "%s", rc == -2 ? "Message sequence number "
		    "beyond the last message" : "Invalid sequence set");
		return;
	}
	name = imap_mailbox_arg(s, &cmd->args[1]);
	if (name == NULL) {
		free(idx);
		imap_done(s, "BAD", "Invalid mailbox name");
		return;
	}
	/* RFC 4314 §4: "i" on the destination; the flags the messages
	 * carry there need their rights too. */
	rc = imap_box_get(s, name, STORE_ACL_INSERT, &b, &err);
	free(name);
	for (size_t i = 0; rc == IMAP_BOX_OK && i < n; i++) {
		flags |= v->msgs[idx[i]].flags;
		has_keywords |= v->msgs[idx[i]].has_keywords;
	}
	if (rc == IMAP_BOX_OK && !is_imap_acl_flags_allowed(b.rights, flags,
	    has_keywords ? "k" : NULL, false))
		rc = IMAP_BOX_NOPERM;
	if (rc != IMAP_BOX_OK) {
		free(idx);
		imap_box_deinit(&b);
		if (rc == IMAP_BOX_NOPERM) {
			imap_done(s, "NO", "[NOPERM] Permission denied");
			return;
		}
		status = store_failure(err, &text);
		imap_done(s, status, "%s", text);
		return;
	}
	uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = v->msgs[idx[i]].uid;
	free(idx);
	if (n == 0) {
		/* RFC 4315 §3: no COPYUID when nothing was copied (a UID set
		 * naming no message, or an empty "$"). */
		free(uids);
		imap_box_deinit(&b);
		imap_done(s, "OK", "%s%s completed", cmd->is_uid ? "UID " : "",
		    cmd->name);
		return;
	}
	c.mailbox = v->mailbox;
	c.uids = uids;
	c.nuids = n;
	c.kind = is_move ? STORE_CHANGE_MOVE : STORE_CHANGE_COPY;
	c.dst_mailbox = b.mb.id;
	imap_box_deinit(&b);
	imap_wait(s);
	if (store_change_submit(s->ctx->store, &c, s->base, copied, s) < 0) {
		imap_wait_cancel(s);
		free(uids);
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	}
	free(uids);
}

static void
expunged(void *arg, const struct store_change_result *r)
{
	struct imap_session *s = arg;
	const char *status, *text;

	if (!imap_resumed(s))
		return;
	if (r->err != STORE_OK) {
		log_error(s->sid, "imap.expunge_failed error=\"%s\"",
		    store_err_text(r->err));
		status = store_failure(r->err, &text);
		imap_done(s, status, "%s", text);
		return;
	}
	s->view->is_stale = true;
	imap_done(s, "OK", "%s completed", s->cmd->is_uid ? "UID EXPUNGE" :
	    "EXPUNGE");
}

/* RFC 9051 §6.4.3: removes the messages with \Deleted set; RFC 4315 §2.1
 * UID EXPUNGE: only those of the set. The flags are read from the store,
 * which may know of a \Deleted set by another session that the view has
 * not heard of yet; messages the view does not hold are left alone. */
void
imap_cmd_expunge(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	const struct store_cond deleted = {
		.kind = STORE_COND_FLAG_SET,
		.n = STORE_FLAG_DELETED,
	};
	struct store_change c = { 0 };
	bool *in_set = NULL;
	uint32_t *uids = NULL;
	size_t nuids = 0, n = 0;
	enum store_err err;

	if (cmd->nargs != (cmd->is_uid ? 1u : 0u)) {
		imap_done(s, "BAD", "%s", cmd->is_uid ?
		    "Syntax: UID EXPUNGE uid-set" : "EXPUNGE takes no arguments");
		return;
	}
	if (cmd->is_uid) {
		size_t *idx, nidx;

		if (imap_view_set(s, &cmd->args[0], true, &idx, &nidx) < 0) {
			imap_done(s, "BAD", "Invalid UID set");
			return;
		}
		in_set = xcalloc(v->n + 1, sizeof(*in_set));
		for (size_t i = 0; i < nidx; i++)
			in_set[idx[i]] = true;
		free(idx);
	}
	if (v->is_readonly) {
		free(in_set);
		imap_done(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (!(v->rights & STORE_ACL_EXPUNGE)) {	/* RFC 4314 §4 */
		free(in_set);
		imap_done(s, "NO", "[NOPERM] Permission denied");
		return;
	}
	if (store_search(s->ctx->store, v->mailbox, &deleted, &uids, &nuids,
	    &err) < 0) {
		free(in_set);
		log_error(s->sid, "imap.expunge_failed error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	}
	for (size_t i = 0; i < nuids; i++) {
		size_t at = imap_view_find(v, uids[i]);

		if (at == SIZE_MAX || v->msgs[at].is_expunged ||
		    (in_set != NULL && !in_set[at]))
			continue;
		uids[n++] = uids[i];
	}
	free(in_set);
	if (n == 0) {
		free(uids);
		imap_done(s, "OK", "%s completed", cmd->is_uid ?
		    "UID EXPUNGE" : "EXPUNGE");
		return;
	}
	c.mailbox = v->mailbox;
	c.uids = uids;
	c.nuids = n;
	c.kind = STORE_CHANGE_EXPUNGE;
	imap_wait(s);
	if (store_change_submit(s->ctx->store, &c, s->base, expunged, s) < 0) {
		imap_wait_cancel(s);
		free(uids);
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	}
	free(uids);
}
