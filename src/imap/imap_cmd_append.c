/*
 * imap_cmd_append: APPEND (RFC 9051 §6.3.12) answering APPENDUID (RFC 4315
 * §3), with the message as a literal, a LITERAL+ literal (RFC 7888) or a
 * literal8 (RFC 3516 §4.4); several messages in one APPEND (MULTIAPPEND,
 * RFC 3502); and REPLACE and UID REPLACE (RFC 8508): an APPEND that
 * expunges a message of the selected mailbox in the same commit. The
 * parser has already read every literal within imap_literal_max (all of
 * them together), those of imap_literal_spool bytes or more into a file
 * of the data directory (copied into the delivery from there); each
 * message becomes one store delivery, chained into
 * one request (store_delivery_chain) so that they are stored all or none,
 * and the command ends in the request's callback, on the session's
 * thread, once everything is durable.
 */
#include "imap/imap_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

static void
append_failed(struct imap_session *s, enum store_err err)
{
	switch (err) {
	case STORE_NOT_FOUND:
		/* RFC 9051 §6.3.12: the client may CREATE it and retry. */
		imap_done(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	case STORE_OVER_QUOTA:
		imap_done(s, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_NOT_ALLOWED:
		imap_done(s, "NO", "[LIMIT] The mailbox cannot take more "
		    "messages");
		return;
	case STORE_INVALID:
		imap_done(s, "NO", "[CANNOT] The message or its flags cannot "
		    "be stored");
		return;
	case STORE_NO_SPACE:
		/* Not [OVERQUOTA]: that is the user's quota (RFC 5530 §3);
		 * the server's disk being full is a temporary failure of
		 * ours. */
		log_error(s->sid, "imap.append_failed error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[UNAVAILABLE] The server is out of disk "
		    "space, try again later");
		return;
	default:
		log_error(s->sid, "imap.append_failed error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	}
}

/* Messages in one MULTIAPPEND; each is a literal, which the parser
 * already bounds (literals per command and bytes in all). */
#define APPEND_MSGS_MAX 1000

static void
appended(void *arg, const struct store_delivery_result *results, size_t n)
{
	struct imap_session *s = arg;
	bool is_replace;
	uint32_t *uids;
	char *set;

	if (!imap_resumed(s))
		return;
	is_replace = strcmp(s->cmd->name, "REPLACE") == 0;
	for (size_t i = 0; i < n; i++) {
		if (results[i].err == STORE_NOT_FOUND && is_replace) {
			/* The mailbox was there when the command began: the
			 * message to replace is what went. */
			if (s->view != NULL)
				s->view->is_stale = true;
			imap_done(s, "NO", "[EXPUNGEISSUED] The message to "
			    "replace was expunged meanwhile");
			return;
		}
		if (results[i].err != STORE_OK) {
			append_failed(s, results[i].err);
			return;
		}
	}
	if (n < 1) {
		append_failed(s, STORE_TEMP);
		return;
	}
	/* The selected mailbox grew, or lost the replaced message:
	 * imap_done()'s sync sends EXISTS and EXPUNGE. */
	if (s->view != NULL && (is_replace ||
	    s->view->mailbox == results[0].mailbox))
		s->view->is_stale = true;
	/* RFC 4315 §3: one UID per message, in the order given; they
	 * ascend. */
	uids = xcalloc(n, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = results[i].uid;
	set = imap_fetch_set_format(uids, n);
	free(uids);
	if (is_replace) {
		/* RFC 8508 §3.3: APPENDUID comes untagged. */
		imap_printf(s, "* OK [APPENDUID %" PRIu32 " %s] Replacement "
		    "Message ID\r\n", results[0].uidvalidity, set);
		imap_done(s, "OK", "%s completed", s->cmd->is_uid ?
		    "UID REPLACE" : "REPLACE");
	} else {
		imap_done(s, "OK", "[APPENDUID %" PRIu32 " %s] APPEND "
		    "completed", results[0].uidvalidity, set);
	}
	free(set);
}

/* One message of an APPEND. */
struct append_msg {
	uint32_t flags;
	char *keywords;
	int64_t date;
	const struct imap_arg *lit;
};

static void
append_msgs_free(struct append_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].keywords);
	free(m);
}

/* 1*([flag-list] [date-time] literal) from args[i] on (RFC 3502 §6).
 * Returns the messages (at least one), or NULL with *error_out set. */
static struct append_msg *
append_args(const struct imap_cmd *cmd, size_t i, size_t *n_out,
    const char **error_out)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->nargs, nmsgs = 0;
	struct append_msg *m;

	*n_out = 0;
	*error_out = "Syntax: APPEND mailbox [(flags)] [date-time] message";
	if (i >= n)
		return NULL;
	m = xcalloc(n - i, sizeof(*m));
	while (i < n) {
		struct append_msg *cur = &m[nmsgs];

		if (nmsgs == APPEND_MSGS_MAX) {
			*error_out = "[LIMIT] Too many messages in one APPEND";
			append_msgs_free(m, nmsgs);
			return NULL;
		}
		if (a[i].kind == IMAP_ARG_LIST) {
			/* RFC 9051 §6.3.12: \Recent cannot be set by
			 * APPEND. */
			if (imap_flags_parse(&a[i], &cur->flags,
			    &cur->keywords) < 0) {
				*error_out = "Invalid flag list";
				append_msgs_free(m, nmsgs + 1);
				return NULL;
			}
			i++;
		}
		if (i < n && a[i].kind == IMAP_ARG_QUOTED) {
			if (!imap_date_time_parse(a[i].str, &cur->date)) {
				*error_out = "Invalid date-time, expected "
				    "\"dd-Mon-yyyy hh:mm:ss +zzzz\"";
				append_msgs_free(m, nmsgs + 1);
				return NULL;
			}
			i++;
		}
		/* Anything else before a message (CATENATE) is not
		 * offered. */
		if (i >= n || (a[i].kind != IMAP_ARG_LITERAL &&
		    a[i].kind != IMAP_ARG_LITERAL8)) {
			append_msgs_free(m, nmsgs + 1);
			return NULL;
		}
		cur->lit = &a[i++];
		nmsgs++;
	}
	*n_out = nmsgs;
	return m;
}

/* Stores msgs into the mailbox name, all or none, expunging replace_uid
 * of the selected mailbox with them when it is not 0 (REPLACE), and ends
 * the command when that is durable. Takes msgs. */
static void
append_run(struct imap_session *s, char *name, struct append_msg *msgs,
    size_t n, uint32_t replace_uid)
{
	struct store_delivery *head = NULL;
	struct imap_box b;
	enum store_err err;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (msgs[i].lit->len == 0) {
			free(name);
			append_msgs_free(msgs, n);
			imap_done(s, "NO", "An empty message cannot be "
			    "stored");
			return;
		}
	}
	/* Refuse a missing mailbox before writing the messages anywhere;
	 * the delivery checks again when it commits. RFC 4314 §4: APPEND
	 * needs "i" (another user's mailbox: into their account and
	 * quota). */
	rc = imap_box_get(s, name, STORE_ACL_INSERT, &b, &err);
	free(name);
	if (rc != IMAP_BOX_OK) {
		imap_box_deinit(&b);
		append_msgs_free(msgs, n);
		if (rc == IMAP_BOX_NOPERM)
			imap_done(s, "NO", "[NOPERM] Permission denied");
		else if (err == STORE_INVALID)
			imap_done_store_err(s, err);	/* the name's fault */
		else
			append_failed(s, err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_delivery *d = store_delivery_new(s->ctx->store,
		    &err);

		const struct imap_arg *lit = msgs[i].lit;

		if (d != NULL && lit->is_spooled && lit->spool_errno != 0) {
			/* The spool could not be written: a full disk is
			 * NO [UNAVAILABLE] as for the delivery itself. */
			err = lit->spool_errno == ENOSPC ||
			    lit->spool_errno == EDQUOT ? STORE_NO_SPACE :
			    STORE_TEMP;
			store_delivery_abort(&d);
			store_delivery_abort(&head);
			imap_box_deinit(&b);
			append_msgs_free(msgs, n);
			append_failed(s, err);
			return;
		}
		if (d == NULL || (lit->is_spooled ?
		    store_delivery_write_fd(d, lit->fd, lit->spool_off,
		    lit->len, &err) :
		    store_delivery_write(d, lit->str, lit->len, &err)) < 0) {
			store_delivery_abort(&d);
			store_delivery_abort(&head);
			imap_box_deinit(&b);
			append_msgs_free(msgs, n);
			append_failed(s, err);
			return;
		}
		/* Parsed now: a chain of small messages holds no bodies. */
		store_delivery_end(d);
		/* Flags the user may not set are dropped (RFC 4314 §4). */
		imap_acl_flags_mask(b.rights, &msgs[i].flags,
		    &msgs[i].keywords);
		store_delivery_add(d, b.owner, b.name, msgs[i].flags,
		    msgs[i].keywords, msgs[i].date);
		if (head == NULL)
			head = d;
		else
			store_delivery_chain(head, d);
	}
	if (replace_uid != 0)
		store_delivery_replace(head, s->view->mailbox, replace_uid);
	imap_box_deinit(&b);
	append_msgs_free(msgs, n);
	imap_wait(s);
	if (store_delivery_submit(head, s->base, appended, s) < 0) {
		imap_wait_cancel(s);
		append_failed(s, STORE_TEMP);
	}
}

void
imap_cmd_append(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct append_msg *msgs;
	const char *error;
	size_t n;
	char *name;

	msgs = append_args(cmd, 1, &n, &error);
	if (msgs == NULL) {
		imap_done(s, "BAD", "%s", error);
		return;
	}
	name = imap_mailbox_arg(s, &cmd->args[0]);
	if (name == NULL) {
		append_msgs_free(msgs, n);
		imap_done(s, "BAD", "Invalid mailbox name");
		return;
	}
	append_run(s, name, msgs, n, 0);
}

/* REPLACE and UID REPLACE (RFC 8508 §3): message mailbox [flags]
 * [date-time] literal. */
void
imap_cmd_replace(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct append_msg *msgs = NULL;
	const char *error = "Syntax: REPLACE message mailbox [(flags)] "
	    "[date-time] message";
	size_t *idx = NULL, n = 0, nidx = 0;
	uint32_t uid;
	char *name;
	int rc;

	if (cmd->nargs < 3 || cmd->args[0].kind != IMAP_ARG_ATOM ||
	    (msgs = append_args(cmd, 2, &n, &error)) == NULL || n != 1) {
		if (msgs != NULL)
			append_msgs_free(msgs, n);
		imap_done(s, "BAD", "%s", n > 1 ? "REPLACE takes one "
		    "message" : error);
		return;
	}
	/* One message, not a set (RFC 8508 §5: seq-number / uniqueid). */
	rc = strpbrk(cmd->args[0].str, ",:$") != NULL ? -1 :
	    imap_view_set(s, &cmd->args[0], cmd->is_uid, &idx, &nidx);
	if (rc < 0) {
		append_msgs_free(msgs, n);
		imap_done(s, "BAD", rc == -2 ? "No message has that sequence "
		    "number" : "Expected one message number");
		return;
	}
	if (nidx != 1 || s->view->msgs[idx[0]].is_expunged) {
		free(idx);
		append_msgs_free(msgs, n);
		imap_done(s, "NO", "[NONEXISTENT] No such message to "
		    "replace");
		return;
	}
	uid = s->view->msgs[idx[0]].uid;
	free(idx);
	if (s->view->is_readonly) {
		append_msgs_free(msgs, n);
		imap_done(s, "NO", "[READ-ONLY] The mailbox is selected "
		    "read-only (EXAMINE)");
		return;
	}
	/* The old message is expunged: "t" and "e" (RFC 4314 §4). */
	if ((s->view->rights & (STORE_ACL_DELETED | STORE_ACL_EXPUNGE)) !=
	    (STORE_ACL_DELETED | STORE_ACL_EXPUNGE)) {
		append_msgs_free(msgs, n);
		imap_done(s, "NO", "[NOPERM] Permission denied");
		return;
	}
	name = imap_mailbox_arg(s, &cmd->args[1]);
	if (name == NULL) {
		append_msgs_free(msgs, n);
		imap_done(s, "BAD", "Invalid mailbox name");
		return;
	}
	append_run(s, name, msgs, n, uid);
}
