/*
 * imap_acl: access control (ACL, RFC 4314) and the mailboxes of other
 * users (RFC 2342 "Other Users" namespace).
 *
 * A name the client gives is resolved here into the account that owns
 * the mailbox and the owner's own name for it: "Other Users/bob@x/Sales"
 * is bob's "Sales"; any other name is the user's own. The user's rights
 * come with it: every right on their own mailboxes, the ACL's on others'.
 * A command asks for the rights it needs; without them it is refused, and
 * when the user may not even look the mailbox up (no "l") the refusal is
 * the one a missing mailbox gets, word for word (RFC 4314 §6), so that
 * nobody learns which mailboxes others have.
 *
 * The selected mailbox of another user keeps its rights in the view;
 * they are read again before every command and every catch-up
 * (imap_acl_view_check), so a revocation stops the next command.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define OTHER_PREFIX IMAP_ACL_OTHER_USERS "/"
#define OTHER_PREFIX_LEN (sizeof(OTHER_PREFIX) - 1)

void
imap_box_deinit(struct imap_box *b)
{
	free(b->name);
	free(b->client_name);
	free(b->owner_address);
	store_mailbox_deinit(&b->mb);
	memset(b, 0, sizeof(*b));
}

/* Splits "Other Users/ADDRESS/NAME" and finds the account. Returns 0, or
 * -1 when the name names no other user's mailbox (the caller answers as
 * for a missing mailbox). */
static int
box_resolve_other(struct imap_session *s, const char *client_name,
    struct imap_box *b)
{
	const char *addr = client_name + OTHER_PREFIX_LEN, *slash;
	struct store_account a;
	enum store_err err;
	char *address;

	if (strncmp(client_name, OTHER_PREFIX, OTHER_PREFIX_LEN) != 0 ||
	    (slash = strchr(addr, '/')) == NULL || slash == addr ||
	    slash[1] == '\0' || (size_t)(slash - addr) > 255)
		return -1;
	address = xstrndup(addr, (size_t)(slash - addr));
	if (store_account_get(s->ctx->store, address, &a, &err) < 0) {
		free(address);
		return -1;
	}
	free(address);
	if (a.id == s->id.account) {
		/* One's own mailboxes have their own names. */
		store_account_deinit(&a);
		return -1;
	}
	b->owner = a.id;
	b->owner_address = xstrdup(a.address);
	b->name = xstrdup(slash + 1);
	store_account_deinit(&a);
	return 0;
}

int
imap_box_resolve(struct imap_session *s, const char *client_name,
    struct imap_box *b)
{
	memset(b, 0, sizeof(*b));
	b->client_name = xstrdup(client_name);
	if (!is_imap_acl_other_name(client_name)) {
		b->owner = s->id.account;
		b->name = xstrdup(client_name);
		b->rights = STORE_ACL_ALL;
		return 0;
	}
	if (box_resolve_other(s, client_name, b) < 0)
		return -1;
	return 0;
}

int
imap_box_get(struct imap_session *s, const char *client_name,
    uint32_t need, struct imap_box *b, enum store_err *err_out)
{
	if (imap_box_resolve(s, client_name, b) < 0) {
		*err_out = STORE_NOT_FOUND;
		return IMAP_BOX_ERR;
	}
	if (store_mailbox_get(s->ctx->store, b->owner, b->name, &b->mb,
	    err_out) < 0)
		return IMAP_BOX_ERR;
	/* Replies name the mailbox as this user sees it. */
	free(b->mb.name);
	b->mb.name = xstrdup(b->client_name);
	if (b->owner != s->id.account &&
	    store_acl_rights(s->ctx->store, s->id.account, b->mb.id,
	    &b->rights, NULL, err_out) < 0)
		return IMAP_BOX_ERR;
	b->is_found = true;
	return imap_box_allowed(b->rights, need, err_out);
}

int
imap_box_allowed(uint32_t rights, uint32_t need, enum store_err *err_out)
{
	if ((rights & need) == need) {
		*err_out = STORE_OK;
		return IMAP_BOX_OK;
	}
	/* RFC 4314 §6: without "l" the mailbox is not there. */
	if (!(rights & STORE_ACL_LOOKUP)) {
		*err_out = STORE_NOT_FOUND;
		return IMAP_BOX_ERR;
	}
	*err_out = STORE_NOT_ALLOWED;
	return IMAP_BOX_NOPERM;
}

void
imap_done_box_err(struct imap_session *s, int rc, enum store_err err)
{
	if (rc == IMAP_BOX_NOPERM)
		imap_done(s, "NO", "[NOPERM] Permission denied");
	else
		imap_done_store_err(s, err);
}

/* ---- The selected mailbox ---------------------------------------------- */

bool
imap_acl_view_check(struct imap_session *s)
{
	struct imap_view *v = s->view;
	enum store_err err;
	uint32_t rights;

	if (v == NULL || v->owner == s->id.account)
		return true;
	if (v->is_revoked)
		return false;
	if (store_acl_rights(s->ctx->store, s->id.account, v->mailbox,
	    &rights, NULL, &err) < 0) {
		/* Gone, or the store cannot say: nothing more is shown
		 * until it can. */
		if (err == STORE_NOT_FOUND)
			v->is_revoked = true;
		return false;
	}
	v->rights = rights;
	if (!(rights & STORE_ACL_READ)) {
		v->is_revoked = true;
		return false;
	}
	return true;
}

bool
imap_acl_dispatch_check(struct imap_session *s)
{
	if (s->view == NULL || s->state != IMAP_STATE_SELECTED ||
	    imap_acl_view_check(s))
		return true;
	/* RFC 4314 leaves open what a session that lost "r" sees; the
	 * mailbox is closed (RFC 7162 §3.2.11 CLOSED), so that no
	 * further command reads or changes it. */
	imap_view_close(s);
	s->state = IMAP_STATE_AUTH;
	imap_printf(s, "* OK [CLOSED] Access to the mailbox was withdrawn\r\n");
	return false;
}

/* ---- The ACL commands (RFC 4314 §3) ------------------------------------ */

/* The identifier argument as an account (*grantee_out; 0: anyone).
 * Returns 0, -1 for a bad identifier, -2 for an unknown account. */
static int
ident_arg(struct imap_session *s, const struct imap_arg *a,
    int64_t *grantee_out, bool *is_negative_out)
{
	const char *str;
	size_t len;
	bool is_anyone;
	char *address;
	struct store_account acc;
	enum store_err err;

	if (!imap_arg_astring(a, &str, &len) || strlen(str) != len ||
	    imap_acl_ident_parse(str, len, is_negative_out, &is_anyone,
	    &address) < 0)
		return -1;
	if (is_anyone) {
		*grantee_out = 0;
		return 0;
	}
	if (store_account_get(s->ctx->store, address, &acc, &err) < 0) {
		free(address);
		return -2;
	}
	free(address);
	*grantee_out = acc.id;
	store_account_deinit(&acc);
	return 0;
}

/* The owner's address, for GETACL and LISTRIGHTS. */
static char *
owner_address(struct imap_session *s, const struct imap_box *b)
{
	if (b->owner_address != NULL)
		return xstrdup(b->owner_address);
	return xstrdup(s->id.address);
}

/* The mailbox argument with the rights need. Returns 0, or -1 after
 * ending the command. */
static int
box_arg(struct imap_session *s, const struct imap_arg *a, uint32_t need,
    struct imap_box *b)
{
	enum store_err err;
	char *name = imap_mailbox_arg(s, a);
	int rc;

	if (name == NULL) {
		imap_done(s, "BAD", "Invalid mailbox name");
		return -1;
	}
	rc = imap_box_get(s, name, need, b, &err);
	free(name);
	if (rc != IMAP_BOX_OK) {
		imap_box_deinit(b);
		imap_done_box_err(s, rc, err);
		return -1;
	}
	return 0;
}

void
imap_cmd_myrights(struct imap_session *s, const struct imap_cmd *cmd)
{
	char rights[IMAP_ACL_RIGHTS_LEN];
	struct imap_box b;
	enum store_err err;
	int rc;

	if (cmd->nargs != 1) {
		imap_done(s, "BAD", "Syntax: MYRIGHTS mailbox");
		return;
	}
	if (box_arg(s, &cmd->args[0], 0, &b) < 0)
		return;
	/* RFC 4314 §4: any of "l", "r", "i", "k", "x", "a". */
	if (!(b.rights & (STORE_ACL_LOOKUP | STORE_ACL_READ |
	    STORE_ACL_INSERT | STORE_ACL_CREATE | STORE_ACL_DELETE |
	    STORE_ACL_ADMIN))) {
		rc = imap_box_allowed(b.rights, STORE_ACL_LOOKUP, &err);
		imap_box_deinit(&b);
		imap_done_box_err(s, rc, err);
		return;
	}
	imap_acl_rights_format(b.rights, rights);
	imap_printf(s, "* MYRIGHTS ");
	imap_write_mailbox(s, b.client_name);
	imap_printf(s, " %s\r\n", rights);
	imap_box_deinit(&b);
	imap_done(s, "OK", "MYRIGHTS completed");
}

void
imap_cmd_getacl(struct imap_session *s, const struct imap_cmd *cmd)
{
	char rights[IMAP_ACL_RIGHTS_LEN];
	struct store_acl_entry *list = NULL;
	size_t n = 0;
	struct imap_box b;
	enum store_err err;
	char *owner;

	if (cmd->nargs != 1) {
		imap_done(s, "BAD", "Syntax: GETACL mailbox");
		return;
	}
	if (box_arg(s, &cmd->args[0], STORE_ACL_ADMIN, &b) < 0)
		return;
	if (store_acl_list(s->ctx->store, b.mb.id, &list, &n, &err) < 0) {
		imap_box_deinit(&b);
		imap_done_store_err(s, err);
		return;
	}
	imap_printf(s, "* ACL ");
	imap_write_mailbox(s, b.client_name);
	/* The owner first: every right, always (not an entry). */
	owner = owner_address(s, &b);
	imap_acl_rights_format(STORE_ACL_ALL, rights);
	imap_printf(s, " ");
	imap_write_string(s, owner, strlen(owner));
	imap_printf(s, " %s", rights);
	free(owner);
	for (size_t i = 0; i < n; i++) {
		char *id = xasprintf("%s%s", list[i].is_negative ? "-" : "",
		    list[i].address != NULL ? list[i].address : "anyone");

		imap_acl_rights_format(list[i].rights, rights);
		imap_printf(s, " ");
		imap_write_string(s, id, strlen(id));
		imap_printf(s, " %s", rights);
		free(id);
	}
	imap_printf(s, "\r\n");
	store_acl_list_free(&list, n);
	imap_box_deinit(&b);
	imap_done(s, "OK", "GETACL completed");
}

void
imap_cmd_listrights(struct imap_session *s, const struct imap_cmd *cmd)
{
	char rights[IMAP_ACL_RIGHTS_LEN];
	struct imap_box b;
	int64_t grantee;
	bool is_negative;
	const char *str;
	size_t len;
	int rc;

	if (cmd->nargs != 2 ||
	    !imap_arg_astring(&cmd->args[1], &str, &len)) {
		imap_done(s, "BAD", "Syntax: LISTRIGHTS mailbox identifier");
		return;
	}
	if (box_arg(s, &cmd->args[0], STORE_ACL_ADMIN, &b) < 0)
		return;
	rc = ident_arg(s, &cmd->args[1], &grantee, &is_negative);
	if (rc == -1) {
		imap_box_deinit(&b);
		imap_done(s, "BAD", "Invalid identifier");
		return;
	}
	imap_printf(s, "* LISTRIGHTS ");
	imap_write_mailbox(s, b.client_name);
	imap_printf(s, " ");
	imap_write_string(s, str, len);
	if (rc == 0 && grantee == b.owner && !is_negative) {
		/* The owner holds every right and can lose none. */
		imap_acl_rights_format(STORE_ACL_ALL, rights);
		imap_printf(s, " %s\r\n", rights);
	} else {
		/* Anyone else: none required, each one alone. */
		imap_printf(s, " \"\"");
		for (size_t i = 0; IMAP_ACL_RIGHTS_LETTERS[i] != '\0'; i++)
			imap_printf(s, " %c", IMAP_ACL_RIGHTS_LETTERS[i]);
		imap_printf(s, "\r\n");
	}
	imap_box_deinit(&b);
	imap_done(s, "OK", "LISTRIGHTS completed");
}

static void
acl_done(void *arg, enum store_err err)
{
	struct imap_session *s = arg;

	if (!imap_resumed(s))
		return;
	if (err == STORE_OK)
		imap_done(s, "OK", "%s completed", s->cmd->name);
	else if (err == STORE_NOT_ALLOWED)
		imap_done(s, "NO", "[NOPERM] Permission denied");
	else
		imap_done_store_err(s, err);
}

/* SETACL mailbox identifier rights, DELETEACL mailbox identifier. */
void
imap_cmd_setacl(struct imap_session *s, const struct imap_cmd *cmd)
{
	bool is_delete = strcasecmp(cmd->name, "DELETEACL") == 0;
	struct store_acl_op op = { 0 };
	const char *str = NULL;
	size_t len = 0;
	struct imap_box b;
	int rc;

	if (cmd->nargs != (is_delete ? 2u : 3u) || (!is_delete &&
	    !imap_arg_astring(&cmd->args[2], &str, &len))) {
		imap_done(s, "BAD", is_delete ? "Syntax: DELETEACL mailbox "
		    "identifier" : "Syntax: SETACL mailbox identifier rights");
		return;
	}
	op.mode = is_delete ? STORE_ACL_DROP : STORE_ACL_REPLACE;
	if (!is_delete && len > 0 && (str[0] == '+' || str[0] == '-')) {
		/* RFC 4314 §3.1: "+" adds, "-" removes. */
		op.mode = str[0] == '+' ? STORE_ACL_ADD : STORE_ACL_REMOVE;
		str++;
		len--;
	}
	if (!is_delete && (strlen(str) != len ||
	    imap_acl_rights_parse(str, len, &op.rights) < 0)) {
		imap_done(s, "BAD", "Unknown right (known: %s, and c, d)",
		    IMAP_ACL_RIGHTS_LETTERS);
		return;
	}
	if (box_arg(s, &cmd->args[0], STORE_ACL_ADMIN, &b) < 0)
		return;
	rc = ident_arg(s, &cmd->args[1], &op.grantee, &op.is_negative);
	if (rc < 0) {
		imap_box_deinit(&b);
		if (rc == -1)
			imap_done(s, "BAD", "Invalid identifier: an address, "
			    "\"anyone\", or either after \"-\"");
		else
			imap_done(s, "NO", "No such user");
		return;
	}
	if (op.grantee == b.owner) {
		imap_box_deinit(&b);
		imap_done(s, "NO", "[CANNOT] The owner always has every "
		    "right");
		return;
	}
	op.actor = s->id.account;
	op.mailbox = b.mb.id;
	imap_box_deinit(&b);
	imap_wait(s);
	if (store_acl_submit(s->ctx->store, &op, s->base, acl_done, s) < 0) {
		imap_wait_cancel(s);
		imap_done(s, "NO", "[UNAVAILABLE] The server is shutting down");
	}
}
