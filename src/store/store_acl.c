/*
 * store_acl: access control lists of mailboxes (RFC 4314; store.h):
 * argument checks, the reads, and the STORE_REQ_ACL requests that carry
 * changes through the writer. The backend keeps one row per (mailbox,
 * grantee, sign) and checks, in the commit, that the account asking may
 * change the list.
 */
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int
store_acl_rights(struct store *st, int64_t account, int64_t mailbox,
    uint32_t *rights_out, int64_t *owner_out, enum store_err *err_out)
{
	int64_t owner = 0;
	int rc;

	*rights_out = 0;
	rc = st->be->acl_rights(st, account, mailbox, rights_out, &owner,
	    err_out);
	if (owner_out != NULL)
		*owner_out = owner;
	return rc;
}

int
store_acl_list(struct store *st, int64_t mailbox,
    struct store_acl_entry **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	return st->be->acl_list(st, mailbox, list_out, n_out, err_out);
}

void
store_acl_list_free(struct store_acl_entry **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*list)[i].address);
	free(*list);
	*list = NULL;
}

int
store_acl_shared_list(struct store *st, int64_t account,
    struct store_acl_shared **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	return st->be->acl_shared_list(st, account, list_out, n_out,
	    err_out);
}

void
store_acl_shared_list_free(struct store_acl_shared **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		store_mailbox_deinit(&(*list)[i].mb);
		free((*list)[i].owner_address);
	}
	free(*list);
	*list = NULL;
}

static bool
is_op_valid(const struct store_acl_op *op)
{
	return op->mailbox > 0 && op->grantee >= 0 && op->actor >= 0 &&
	    (op->rights & ~STORE_ACL_ALL) == 0 &&
	    (int)op->mode >= STORE_ACL_REPLACE && op->mode <= STORE_ACL_DROP;
}

int
store_acl_submit(struct store *st, const struct store_acl_op *op,
    struct event_base *base, store_mailbox_cb cb, void *arg)
{
	struct store_req *req = xcalloc(1, sizeof(*req));

	req->kind = STORE_REQ_ACL;
	req->acl = *op;
	/* A bad request still travels through the writer so that the
	 * callback comes later, from the loop (store.h). */
	if (!is_op_valid(op))
		req->err = STORE_INVALID;
	req->base = base;
	req->mailbox_cb = cb;
	req->arg = arg;
	if (store_writer_submit(st, req) < 0) {
		free(req);
		return -1;
	}
	return 0;
}

int
store_acl_set(struct store *st, const struct store_acl_op *op,
    enum store_err *err_out)
{
	struct store_req req;
	int rc;

	if (!is_op_valid(op)) {
		*err_out = STORE_INVALID;
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.kind = STORE_REQ_ACL;
	req.acl = *op;
	rc = store_writer_run(st, &req);
	if (rc == 0 && req.err != STORE_OK)
		rc = -1;
	*err_out = req.err;
	free(req.touched);
	return rc;
}
