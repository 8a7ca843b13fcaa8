/*
 * imap_cmd_mailbox: the commands on mailboxes as a whole (RFC 9051 §6.3):
 * SELECT and EXAMINE (with CONDSTORE and QRESYNC, RFC 7162), CREATE (with
 * USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS (with
 * SIZE, RFC 8438) and NAMESPACE (RFC 2342). LIST and LSUB are in
 * imap_cmd_list.c. '/' separates levels, as in the store.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mutf7.h"
#include "lib/util.h"

#define MAILBOX_NAME_MAX 1000
/* Patterns in one LIST command. */
#define LIST_PATTERNS_MAX 32

/* Makes a leading "inbox" of any case "INBOX" (RFC 9051 §5.1). */
static void
inbox_normalize(char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		memcpy(name, "INBOX", 5);
}

static bool
is_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 :
		    (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0)
			return false;
		p++;
		for (int i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
		}
	}
	return true;
}

char *
imap_name_decode(struct imap_session *s, const char *str, size_t len)
{
	char *name;

	if (len > MAILBOX_NAME_MAX || strlen(str) != len)
		return NULL;
	if (s->is_utf8)
		name = is_utf8_valid(str) ? xstrdup(str) : NULL;
	else
		name = mutf7_decode(str);
	if (name != NULL)
		inbox_normalize(name);
	return name;
}

char *
imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a)
{
	const char *str;
	size_t len;
	char *name;

	if (!imap_arg_astring(a, &str, &len) || len == 0)
		return NULL;
	name = imap_name_decode(s, str, len);
	if (name == NULL)
		return NULL;
	/* A trailing separator only says children are planned (RFC 9051
	 * §6.3.4). */
	len = strlen(name);
	while (len > 1 && name[len - 1] == '/')
		name[--len] = '\0';
	return name;
}

void
imap_done_store_err(struct imap_session *s, enum store_err err)
{
	switch (err) {
	case STORE_NOT_FOUND:
		imap_done(s, "NO", "[NONEXISTENT] No such mailbox");
		break;
	case STORE_EXISTS:
		imap_done(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		break;
	case STORE_INVALID:
		/* Names that read as paths are refused so that no export
		 * to a file system can leave the account's folder. */
		imap_done(s, "NO", "[CANNOT] Invalid mailbox name: no level "
		    "may be empty, \".\" or \"..\", the name may not begin "
		    "with \"/\" or \"~\", and control characters, \"*\" "
		    "and \"%%\" are not allowed");
		break;
	case STORE_NOT_ALLOWED:
		imap_done(s, "NO", "[CANNOT] Not allowed on this mailbox");
		break;
	case STORE_OVER_QUOTA:
		imap_done(s, "NO", "[OVERQUOTA] Over quota");
		break;
	case STORE_NO_SPACE:
		imap_done(s, "NO", "[UNAVAILABLE] The server is out of disk "
		    "space, try again later");
		break;
	default:
		imap_done(s, "NO", "[UNAVAILABLE] %s, try again later",
		    store_err_text(err));
		break;
	}
}

/* ---- SELECT and EXAMINE ----------------------------------------------- */

/* The QRESYNC parameters of SELECT (RFC 7162 §3.2.5). */
struct qresync {
	bool is_set;
	uint32_t uidvalidity;
	uint64_t modseq;
	const struct imap_arg *known_uids;
};

static int
select_params(struct imap_session *s, const struct imap_arg *a,
    struct qresync *q)
{
	if (a->kind != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *p = &a->list[i];

		if (is_imap_arg_atom(p, "CONDSTORE")) {
			s->is_condstore = true;
			continue;
		}
		if (!is_imap_arg_atom(p, "QRESYNC") || !s->is_qresync ||
		    i + 1 >= a->len || a->list[i + 1].kind != IMAP_ARG_LIST)
			return -1;
		p = &a->list[++i];
		if (p->len < 2 || p->len > 4 ||
		    !imap_arg_number(&p->list[0], &q->uidvalidity) ||
		    !imap_arg_number64(&p->list[1], &q->modseq) ||
		    q->uidvalidity == 0)
			return -1;
		if (p->len >= 3) {
			if (p->list[2].kind != IMAP_ARG_ATOM)
				return -1;
			q->known_uids = &p->list[2];
		}
		q->is_set = true;
	}
	return 0;
}

/* RFC 7162 §3.2.5.1: what changed since the client's modseq, as
 * VANISHED (EARLIER) and FETCH responses, before the tagged OK. */
static void
qresync_report(struct imap_session *s, const struct qresync *q)
{
	struct imap_view *v = s->view;
	struct store_msg *changed = NULL;
	uint32_t *expunged = NULL;
	size_t nchanged = 0, nexpunged = 0, nout = 0;
	struct imap_seqset known = { 0 };
	bool has_known = false;
	enum store_err err;

	if (q->uidvalidity != v->uidvalidity)
		return;
	if (store_msg_changes(s->ctx->store, v->mailbox, q->modseq, &changed,
	    &nchanged, &expunged, &nexpunged, NULL, &err) < 0)
		return;
	if (q->known_uids != NULL &&
	    imap_seqset_parse(q->known_uids->str, 10000, &known) == 0) {
		imap_seqset_resolve(&known, UINT32_MAX);
		has_known = true;
	}
	for (size_t i = 0; i < nexpunged; i++) {
		if (has_known && !is_imap_seqset_member(&known, expunged[i]))
			continue;
		if (imap_view_find(v, expunged[i]) != SIZE_MAX)
			continue;
		imap_printf(s, "%s%u", nout++ ? "," : "* VANISHED (EARLIER) ",
		    expunged[i]);
	}
	if (nout > 0)
		imap_printf(s, "\r\n");
	for (size_t i = 0; i < nchanged; i++) {
		size_t at = imap_view_find(v, changed[i].uid);

		if (at == SIZE_MAX)
			continue;
		imap_view_flags_announce(s);
		if (s->is_uidonly)
			imap_printf(s, "* UIDFETCH %u (FLAGS ",
			    v->msgs[at].uid);
		else
			imap_printf(s, "* %zu FETCH (UID %u FLAGS ", at + 1,
			    v->msgs[at].uid);
		imap_write_flags(s, imap_view_flags(s, at),
		    imap_view_keywords(v, at));
		imap_printf(s, " MODSEQ (%llu))\r\n",
		    (unsigned long long)imap_view_modseq(s, at));
	}
	if (has_known)
		imap_seqset_deinit(&known);
	store_msg_list_free(&changed, nchanged);
	free(expunged);
}

void
imap_cmd_select(struct imap_session *s, const struct imap_cmd *cmd)
{
	bool is_readonly = strcmp(cmd->name, "EXAMINE") == 0;
	struct qresync q = { 0 };
	struct imap_view *v;
	enum store_err err;
	char *name;
	const char *str;
	size_t len;
	bool had_view = s->view != NULL;
	size_t first_unseen = 0;
	char id[AUTH_OBJECT_ID_LEN];
	int rc;

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    !imap_arg_astring(&cmd->args[0], &str, &len) || len == 0) {
		imap_done(s, "BAD", "Syntax: %s mailbox [(parameters)]",
		    cmd->name);
		return;
	}
	if ((name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		/* A well-formed astring that is no mailbox name (not
		 * modified UTF-7, RFC 3501 §5.1.3, or too long): a failed
		 * SELECT, which leaves no mailbox selected (RFC 9051
		 * §6.3.2); NO as Dovecot answers (imaptest's atoms). */
		s->state = IMAP_STATE_AUTH;
		imap_view_close(s);
		if (had_view)
			imap_printf(s, "* OK [CLOSED] Previous mailbox "
			    "closed\r\n");
		imap_done(s, "NO", "[NONEXISTENT] No mailbox has that name: "
		    "it is not valid %s", s->is_utf8 ? "UTF-8" :
		    "modified UTF-7");
		return;
	}
	if (cmd->nargs == 2 && select_params(s, &cmd->args[1], &q) < 0) {
		free(name);
		imap_done(s, "BAD", "Unknown %s parameters (QRESYNC needs "
		    "ENABLE QRESYNC first)", cmd->name);
		return;
	}
	/* RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected. */
	s->state = IMAP_STATE_AUTH;
	if ((rc = imap_view_open(s, name, is_readonly, &err)) < 0) {
		free(name);
		if (had_view)
			imap_printf(s, "* OK [CLOSED] Previous mailbox "
			    "closed\r\n");
		imap_done_box_err(s, rc, err);
		return;
	}
	free(name);
	if (had_view)
		imap_printf(s, "* OK [CLOSED] Previous mailbox closed\r\n");
	v = s->view;
	s->state = IMAP_STATE_SELECTED;
	imap_view_flags_write(s);
	imap_printf(s, "* %zu EXISTS\r\n", v->n);
	if (!s->is_rev2) {
		imap_printf(s, "* %zu RECENT\r\n", v->nrecent);
		for (size_t i = 0; i < v->n && first_unseen == 0; i++) {
			if (!(v->msgs[i].flags & STORE_FLAG_SEEN))
				first_unseen = i + 1;
		}
		/* A sequence number: not under UIDONLY (RFC 9586). */
		if (first_unseen > 0 && !s->is_uidonly)
			imap_printf(s, "* OK [UNSEEN %zu] First unseen\r\n",
			    first_unseen);
	}
	imap_printf(s, "* OK [UIDVALIDITY %u] UIDs valid\r\n",
	    v->uidvalidity);
	imap_printf(s, "* OK [UIDNEXT %u] Predicted next UID\r\n",
	    v->uidnext);
	imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)v->modseq);
	imap_mailbox_id(s, v->mailbox, v->uidvalidity, id);
	imap_printf(s, "* OK [MAILBOXID (%s)] Ok\r\n", id);	/* RFC 8474 */
	if (s->is_rev2) {
		/* RFC 9051 §6.3.2: the mailbox's name as the server
		 * knows it. */
		imap_printf(s, "* LIST () \"/\" ");
		imap_write_mailbox(s, v->name);
		imap_printf(s, "\r\n");
	}
	if (q.is_set)
		qresync_report(s, &q);
	imap_done(s, "OK", "[%s] %s completed", v->is_readonly ? "READ-ONLY" :
	    "READ-WRITE", cmd->name);
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE -------------------------------- */

static void create_done(struct imap_session *s, const char *name);

/* The writer's answer to one of the four: the session waited for it
 * without holding its worker (DESIGN.md, IMAP). CREATE kept its name in
 * s->job for the MAILBOXID of its reply. */
static void
mailbox_done(void *arg, enum store_err err)
{
	struct imap_session *s = arg;

	if (!imap_resumed(s))
		return;
	if (err != STORE_OK) {
		imap_done_store_err(s, err);
		return;
	}
	if (strcasecmp(s->cmd->name, "DELETE") == 0) {
		/* Deleting the selected mailbox leaves no mailbox selected;
		 * only once it is gone: a refused DELETE (no "x", RFC 4314
		 * §4) leaves the selection as it was. */
		if (s->view != NULL && s->job != NULL &&
		    strcmp(s->view->name, s->job) == 0) {
			imap_view_close(s);
			s->state = IMAP_STATE_AUTH;
		}
		imap_done(s, "OK", "DELETE completed");
		return;
	}
	if (s->job != NULL) {
		create_done(s, s->job);
		return;
	}
	imap_done(s, "OK", "%s completed", s->cmd->name);
}

/* Submits op; the reply comes from mailbox_done. */
static void
mailbox_submit(struct imap_session *s, struct store_mailbox_op *op,
    const char *client_name)
{
	/* In another user's account the writer checks the rights again. */
	op->actor = s->id.account;
	if (op->kind == STORE_MAILBOX_CREATE ||
	    op->kind == STORE_MAILBOX_DELETE) {
		/* CREATE: the owner's name, for the MAILBOXID; DELETE: the
		 * name the client gave, to close the view if selected. */
		s->job = xstrdup(op->kind == STORE_MAILBOX_CREATE ? op->name :
		    client_name);
		s->job_free = free;
	}
	imap_wait(s);
	if (store_mailbox_submit(s->ctx->store, op, s->base, mailbox_done,
	    s) < 0) {
		imap_wait_cancel(s);
		imap_done(s, "NO", "[UNAVAILABLE] The server is shutting down");
	}
}

static const struct {
	const char *name;
	enum store_special special;
} specials[] = {
	{ "\\Sent", STORE_SPECIAL_SENT },
	{ "\\Drafts", STORE_SPECIAL_DRAFTS },
	{ "\\Trash", STORE_SPECIAL_TRASH },
	{ "\\Junk", STORE_SPECIAL_JUNK },
	{ "\\Archive", STORE_SPECIAL_ARCHIVE },
	{ "\\All", STORE_SPECIAL_ALL },
	{ "\\Flagged", STORE_SPECIAL_FLAGGED },
};

/* The OK of CREATE, with the new mailbox's MAILBOXID (RFC 8474 §4.1). */
static void
create_done(struct imap_session *s, const char *name)
{
	char id[AUTH_OBJECT_ID_LEN];
	struct store_mailbox mb;
	enum store_err err;

	if (store_mailbox_get(s->ctx->store, s->id.account, name, &mb,
	    &err) < 0) {
		imap_done(s, "OK", "CREATE completed");
		return;
	}
	imap_mailbox_id(s, mb.id, mb.uidvalidity, id);
	store_mailbox_deinit(&mb);
	imap_done(s, "OK", "[MAILBOXID (%s)] CREATE completed", id);
}

/* RFC 6154 §3: CREATE name (USE (\Archive)). Returns 0, -1 for bad
 * syntax, -2 for an attribute we do not support. */
static int
create_params(const struct imap_arg *a, enum store_special *special)
{
	if (a->kind != IMAP_ARG_LIST || a->len != 2 ||
	    !is_imap_arg_atom(&a->list[0], "USE") ||
	    a->list[1].kind != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->list[1].len; i++) {
		if (a->list[1].list[i].kind != IMAP_ARG_ATOM)
			return -1;
	}
	if (a->list[1].len == 0)
		return 0;
	/* The store keeps one attribute per mailbox: RFC 6154 §3 lets a
	 * server refuse the others with USEATTR. */
	if (a->list[1].len > 1)
		return -2;
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		if (strcasecmp(a->list[1].list[0].str, specials[i].name) ==
		    0) {
			*special = specials[i].special;
			return 0;
		}
	}
	return -2;
}

/* For CREATE and RENAME's new name in the other users' namespace: b
 * receives the owner and the owner's name for name, whose parent must be
 * a mailbox of the same owner on which the user holds "k" (RFC 4314 §4).
 * Returns 0, or -1 after ending the command (deinit b either way). */
static int
other_parent_check(struct imap_session *s, const char *name,
    struct imap_box *b)
{
	struct imap_box parent;
	enum store_err err;
	char *pname = NULL;
	const char *slash = strrchr(name, '/');
	int rc = IMAP_BOX_NOPERM;

	if (imap_box_resolve(s, name, b) < 0 || strchr(b->name, '/') ==
	    NULL) {
		/* A top level of another user's: nobody but the owner
		 * makes one. */
		imap_done(s, "NO", "[NOPERM] Permission denied");
		return -1;
	}
	pname = xstrndup(name, (size_t)(slash - name));
	rc = imap_box_get(s, pname, STORE_ACL_CREATE, &parent, &err);
	free(pname);
	imap_box_deinit(&parent);
	if (rc != IMAP_BOX_OK) {
		imap_done_box_err(s, rc, err);
		return -1;
	}
	return 0;
}

void
imap_cmd_create(struct imap_session *s, const struct imap_cmd *cmd)
{
	enum store_special special = STORE_SPECIAL_NONE;
	struct store_mailbox_op op = { 0 };
	char *name;
	int rc = 0;

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    (name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		imap_done(s, "BAD", "Syntax: CREATE mailbox [(USE "
		    "(attribute))]");
		return;
	}
	if (cmd->nargs == 2)
		rc = create_params(&cmd->args[1], &special);
	if (rc < 0) {
		free(name);
		if (rc == -2)
			imap_done(s, "NO", "[USEATTR] Unsupported special-use "
			    "attribute");
		else
			imap_done(s, "BAD", "Syntax: CREATE mailbox [(USE "
			    "(attribute))]");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_done(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	op.kind = STORE_MAILBOX_CREATE;
	op.account = s->id.account;
	op.name = name;
	op.special = special;
	if (is_imap_acl_other_name(name)) {
		struct imap_box b;

		/* RFC 4314 §4: "k" on the parent, in the owner's account.
		 * A special use is the owner's to give (RFC 6154 §3 lets a
		 * server refuse one): a \Sent or \Drafts made by another
		 * user in a folder they can read would take the owner's
		 * client's copies there. */
		if (special != STORE_SPECIAL_NONE) {
			free(name);
			imap_done(s, "NO", "[USEATTR] Only the owner gives a "
			    "mailbox a special use");
			return;
		}
		if ((rc = other_parent_check(s, name, &b)) == 0) {
			op.account = b.owner;
			op.name = b.name;
			mailbox_submit(s, &op, name);
		}
		imap_box_deinit(&b);
		free(name);
		return;
	}
	mailbox_submit(s, &op, name);
	free(name);
}

void
imap_cmd_delete(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct store_mailbox_op op = { 0 };
	char *name;

	if (cmd->nargs != 1 ||
	    (name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		imap_done(s, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_done(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	op.kind = STORE_MAILBOX_DELETE;
	op.account = s->id.account;
	op.name = name;
	if (is_imap_acl_other_name(name)) {
		struct imap_box b;
		enum store_err err;
		int rc;

		/* RFC 4314 §4: "x" on the mailbox itself. */
		rc = imap_box_get(s, name, STORE_ACL_DELETE, &b, &err);
		if (rc == IMAP_BOX_OK) {
			op.account = b.owner;
			op.name = b.name;
			mailbox_submit(s, &op, name);
		} else {
			imap_done_box_err(s, rc, err);
		}
		imap_box_deinit(&b);
		free(name);
		return;
	}
	mailbox_submit(s, &op, name);
	free(name);
}

void
imap_cmd_rename(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct store_mailbox_op op = { 0 };
	char *from, *to;

	if (cmd->nargs != 2 ||
	    (from = imap_mailbox_arg(s, &cmd->args[0])) == NULL)
		goto bad;
	if ((to = imap_mailbox_arg(s, &cmd->args[1])) == NULL) {
		free(from);
		goto bad;
	}
	if (strcmp(to, "INBOX") == 0) {
		free(from);
		free(to);
		imap_done(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	op.kind = STORE_MAILBOX_RENAME;
	op.account = s->id.account;
	op.name = from;
	op.to = to;
	if (is_imap_acl_other_name(from) || is_imap_acl_other_name(to)) {
		struct imap_box src, dst;
		enum store_err err;
		int rc;

		/* Within one other user's mailboxes only: "x" on the old
		 * name, "k" on the new parent (RFC 4314 §4). */
		rc = imap_box_get(s, from, STORE_ACL_DELETE, &src, &err);
		if (rc != IMAP_BOX_OK) {
			imap_done_box_err(s, rc, err);
		} else if (!is_imap_acl_other_name(from) ||
		    !is_imap_acl_other_name(to)) {
			imap_done(s, "NO", "[CANNOT] A mailbox cannot move "
			    "between users");
		} else if (other_parent_check(s, to, &dst) == 0) {
			if (dst.owner != src.owner) {
				imap_done(s, "NO", "[CANNOT] A mailbox cannot "
				    "move between users");
			} else {
				op.account = src.owner;
				op.name = src.name;
				op.to = dst.name;
				mailbox_submit(s, &op, from);
			}
			imap_box_deinit(&dst);
		} else {
			imap_box_deinit(&dst);
		}
		imap_box_deinit(&src);
		free(from);
		free(to);
		return;
	}
	mailbox_submit(s, &op, from);
	free(from);
	free(to);
	return;
bad:
	imap_done(s, "BAD", "Syntax: RENAME from to");
}

void
imap_cmd_subscribe(struct imap_session *s, const struct imap_cmd *cmd)
{
	bool is_on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	struct store_mailbox_op op = { 0 };
	char *name;

	if (cmd->nargs != 1 ||
	    (name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		imap_done(s, "BAD", "Syntax: %s mailbox", cmd->name);
		return;
	}
	op.kind = is_on ? STORE_MAILBOX_SUBSCRIBE : STORE_MAILBOX_UNSUBSCRIBE;
	op.account = s->id.account;
	op.name = name;
	if (is_on && is_imap_acl_other_name(name)) {
		struct imap_box b;
		enum store_err err;
		int rc;

		/* Another user's mailbox: subscribed under the user's name
		 * for it, if the user may look it up. */
		rc = imap_box_get(s, name, STORE_ACL_LOOKUP, &b, &err);
		imap_box_deinit(&b);
		if (rc != IMAP_BOX_OK) {
			free(name);
			imap_done_box_err(s, rc, err);
			return;
		}
		op.kind = STORE_MAILBOX_SUBSCRIBE_NAME;
	}
	mailbox_submit(s, &op, name);
	free(name);
}

/* ---- STATUS ------------------------------------------------------------ */

enum {
	STATUS_MESSAGES = 1 << 0,
	STATUS_UIDNEXT = 1 << 1,
	STATUS_UIDVALIDITY = 1 << 2,
	STATUS_UNSEEN = 1 << 3,
	STATUS_DELETED = 1 << 4,
	STATUS_SIZE = 1 << 5,
	STATUS_HIGHESTMODSEQ = 1 << 6,
	STATUS_RECENT = 1 << 7,
	STATUS_DELETED_STORAGE = 1 << 8,	/* RFC 9208 §4.1.5 */
	STATUS_APPENDLIMIT = 1 << 9,	/* RFC 7889 §4 */
	STATUS_MAILBOXID = 1 << 10,	/* RFC 8474 §4.2 */
};

static const struct {
	const char *name;
	unsigned bit;
} status_items[] = {
	{ "MESSAGES", STATUS_MESSAGES },
	{ "UIDNEXT", STATUS_UIDNEXT },
	{ "UIDVALIDITY", STATUS_UIDVALIDITY },
	{ "UNSEEN", STATUS_UNSEEN },
	{ "DELETED", STATUS_DELETED },
	{ "SIZE", STATUS_SIZE },
	{ "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ },
	{ "RECENT", STATUS_RECENT },
	{ "DELETED-STORAGE", STATUS_DELETED_STORAGE },
	{ "APPENDLIMIT", STATUS_APPENDLIMIT },
	{ "MAILBOXID", STATUS_MAILBOXID },
};

unsigned
imap_status_items_parse(const struct imap_arg *a)
{
	unsigned bits = 0;

	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return 0;
	for (size_t i = 0; i < a->len; i++) {
		unsigned bit = 0;

		for (size_t k = 0; k < sizeof(status_items) /
		    sizeof(status_items[0]); k++) {
			if (is_imap_arg_atom(&a->list[i], status_items[k].name))
				bit = status_items[k].bit;
		}
		if (bit == 0)
			return 0;
		bits |= bit;
	}
	return bits;
}

/* The number and the bytes of the \Deleted messages of mailbox (STATUS
 * DELETED, RFC 9051 §6.3.11; DELETED-STORAGE, RFC 9208 §4.1.5). */
static void
count_deleted(struct imap_session *s, int64_t mailbox, uint32_t *n_out,
    uint64_t *bytes_out)
{
	struct store_msg *list = NULL;
	size_t n = 0;
	enum store_err err;

	*n_out = 0;
	*bytes_out = 0;
	if (store_msg_list(s->ctx->store, mailbox, 1, UINT32_MAX, &list, &n,
	    &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (list[i].flags & STORE_FLAG_DELETED) {
			(*n_out)++;
			*bytes_out += list[i].size;
		}
	}
	store_msg_list_free(&list, n);
}

void
imap_status_write(struct imap_session *s, const struct store_mailbox *mb,
    unsigned bits)
{
	bool is_first = true;
	uint32_t ndeleted = 0;
	uint64_t deleted_bytes = 0;
	uint32_t nrecent = 0;
	char id[AUTH_OBJECT_ID_LEN];
	enum store_err err;

	if (bits & STATUS_HIGHESTMODSEQ)
		s->is_condstore = true;
	if (bits & (STATUS_DELETED | STATUS_DELETED_STORAGE))
		count_deleted(s, mb->id, &ndeleted, &deleted_bytes);
	/* RFC 3501 §6.3.10: counted, not claimed. The selected mailbox's
	 * recent messages are this session's (claimed) plus the ones it has
	 * not heard of yet. IMAP4rev2 has no \Recent: always 0. */
	if ((bits & STATUS_RECENT) && !s->is_rev2) {
		if (store_recent_count(s->ctx->store, mb->id,
		    mb->uidvalidity, &nrecent, &err) < 0)
			nrecent = 0;
		if (s->view != NULL && s->view->mailbox == mb->id &&
		    s->view->is_recent_claimer)
			nrecent += (uint32_t)s->view->nrecent;
	}
	imap_printf(s, "* STATUS ");
	imap_write_mailbox(s, mb->name);
	imap_printf(s, " (");
	for (size_t k = 0; k < sizeof(status_items) /
	    sizeof(status_items[0]); k++) {
		unsigned long long value = 0;

		switch (bits & status_items[k].bit) {
		case 0:
			continue;
		case STATUS_MESSAGES:
			value = mb->messages;
			break;
		case STATUS_UIDNEXT:
			value = mb->uidnext;
			break;
		case STATUS_UIDVALIDITY:
			value = mb->uidvalidity;
			break;
		case STATUS_UNSEEN:
			value = mb->unseen;
			break;
		case STATUS_DELETED:
			value = ndeleted;
			break;
		case STATUS_DELETED_STORAGE:
			/* In the unit of the STORAGE resource, 1024 octets
			 * (RFC 9208 §5.1): what EXPUNGE would free, the sum
			 * of the RFC822.SIZEs, rounded up. */
			value = (deleted_bytes + 1023) / 1024;
			break;
		case STATUS_MAILBOXID:
			imap_mailbox_id(s, mb->id, mb->uidvalidity, id);
			imap_printf(s, "%sMAILBOXID (%s)", is_first ? "" :
			    " ", id);
			is_first = false;
			continue;
		case STATUS_APPENDLIMIT:
			/* One limit for every mailbox: the literal's. */
			value = s->cfg->imap_literal_max;
			break;
		case STATUS_SIZE:
			value = mb->size;
			break;
		case STATUS_HIGHESTMODSEQ:
			value = mb->highestmodseq;
			break;
		case STATUS_RECENT:
			value = nrecent;
			break;
		}
		imap_printf(s, "%s%s %llu", is_first ? "" : " ",
		    status_items[k].name, value);
		is_first = false;
	}
	imap_printf(s, ")\r\n");
}

void
imap_cmd_status(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_box b;
	enum store_err err;
	unsigned bits;
	char *name;
	int rc;

	if (cmd->nargs != 2 ||
	    (bits = imap_status_items_parse(&cmd->args[1])) == 0 ||
	    (name = imap_mailbox_arg(s, &cmd->args[0])) == NULL) {
		imap_done(s, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	/* RFC 4314 §4: STATUS needs "r". */
	rc = imap_box_get(s, name, STORE_ACL_READ, &b, &err);
	free(name);
	if (rc != IMAP_BOX_OK) {
		imap_box_deinit(&b);
		imap_done_box_err(s, rc, err);
		return;
	}
	imap_status_write(s, &b.mb, bits);
	imap_box_deinit(&b);
	imap_done(s, "OK", "STATUS completed");
}

void
imap_cmd_namespace(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	/* RFC 2342: the personal namespace and the other users' (imap_acl.c);
	 * no shared one. */
	imap_printf(s, "* NAMESPACE ((\"\" \"/\")) ((\"%s/\" \"/\")) NIL\r\n",
	    IMAP_ACL_OTHER_USERS);
	imap_done(s, "OK", "NAMESPACE completed");
}
