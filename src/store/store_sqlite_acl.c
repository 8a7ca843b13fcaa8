/*
 * store_sqlite_acl: access control lists of the embedded backend (schema
 * v12, store.h). Reads run on a pooled read connection; changes on the
 * writer thread, in the batch's transaction, where the right of the
 * account asking is checked again so that a change never rests on rights
 * revoked since the session looked.
 */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* RFC 4314 §2: the rights of account are the union of the positive
 * entries naming it or "anyone", minus the union of the negative ones.
 * Returns 0 with *rights_out and *owner_out set, 1 when the mailbox does
 * not exist, or -1 (rc in *rc_out). */
static int
rights_read(struct sq_conn *c, int64_t account, int64_t mailbox,
    uint32_t *rights_out, int64_t *owner_out, int *rc_out)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_ACL_OWNER);
	uint32_t pos = 0, neg = 0;
	int rc = SQLITE_ERROR;

	*rights_out = 0;
	*owner_out = 0;
	if (s != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*owner_out = sqlite3_column_int64(s, 0);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW) {
		*rc_out = rc;
		return -1;
	}
	if (*owner_out == account) {
		*rights_out = STORE_ACL_ALL;
		return 0;
	}
	if ((s = sq_stmt(c, SQ_ACL_ROWS)) == NULL) {
		*rc_out = SQLITE_ERROR;
		return -1;
	}
	sqlite3_bind_int64(s, 1, mailbox);
	sqlite3_bind_int64(s, 2, account);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint32_t r = (uint32_t)sqlite3_column_int64(s, 2) &
		    STORE_ACL_ALL;

		if (sqlite3_column_int(s, 1) != 0)
			neg |= r;
		else
			pos |= r;
	}
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		*rc_out = rc;
		return -1;
	}
	*rights_out = pos & ~neg;
	return 0;
}

int
sq_acl_rights(struct store *st, int64_t account, int64_t mailbox,
    uint32_t *rights_out, int64_t *owner_out, enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	int rc = SQLITE_OK, found;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	/* One snapshot for the owner and the entries. */
	if (sq_exec(c, SQ_BEGIN_READ) != SQLITE_DONE) {
		*err_out = sq_err(c, SQLITE_ERROR, "acl_rights");
		sq_reader_put(st, c);
		return -1;
	}
	found = rights_read(c, account, mailbox, rights_out, owner_out, &rc);
	sq_exec(c, SQ_COMMIT);
	if (found < 0)
		*err_out = sq_err(c, rc, "acl_rights");
	else
		*err_out = found == 0 ? STORE_OK : STORE_NOT_FOUND;
	sq_reader_put(st, c);
	return found == 0 ? 0 : -1;
}

int
sq_acl_list(struct store *st, int64_t mailbox,
    struct store_acl_entry **list_out, size_t *n_out,
    enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = SQLITE_ERROR;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	if ((s = sq_stmt(c, SQ_ACL_LIST)) != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct store_acl_entry *e;

			if (*n_out == cap) {
				cap = cap ? cap * 2 : 8;
				*list_out = xrealloc(*list_out,
				    cap * sizeof(**list_out));
			}
			e = &(*list_out)[(*n_out)++];
			e->grantee = sqlite3_column_int64(s, 0);
			e->address = e->grantee != 0 ? sq_text(s, 1) : NULL;
			e->is_negative = sqlite3_column_int(s, 2) != 0;
			e->rights = (uint32_t)sqlite3_column_int64(s, 3) &
			    STORE_ACL_ALL;
			if (e->grantee != 0 && e->address == NULL)
				(*n_out)--;	/* cannot be: a trigger */
		}
		sq_reset(s);
	}
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "acl_list");
		store_acl_list_free(list_out, *n_out);
		*n_out = 0;
		sq_reader_put(st, c);
		return -1;
	}
	*err_out = STORE_OK;
	sq_reader_put(st, c);
	return 0;
}

int
sq_acl_shared_list(struct store *st, int64_t account,
    struct store_acl_shared **list_out, size_t *n_out,
    enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	struct store_acl_shared cur;
	uint32_t pos = 0, neg = 0;
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = SQLITE_ERROR;
	bool has_cur = false;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	memset(&cur, 0, sizeof(cur));
	if ((s = sq_stmt(c, SQ_ACL_SHARED)) != NULL) {
		sqlite3_bind_int64(s, 1, account);
		/* Rows come by owner and name: the entries of one mailbox
		 * (at most four) are neighbours. */
		for (;;) {
			int64_t id = 0;

			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				id = sqlite3_column_int64(s, 0);
			if (has_cur && (rc != SQLITE_ROW || id != cur.mb.id)) {
				cur.rights = pos & ~neg;
				if (cur.rights & STORE_ACL_LOOKUP) {
					if (*n_out == cap) {
						cap = cap ? cap * 2 : 16;
						*list_out = xrealloc(*list_out,
						    cap * sizeof(**list_out));
					}
					(*list_out)[(*n_out)++] = cur;
				} else {
					store_mailbox_deinit(&cur.mb);
					free(cur.owner_address);
				}
				memset(&cur, 0, sizeof(cur));
				has_cur = false;
			}
			if (rc != SQLITE_ROW)
				break;
			if (!has_cur) {
				sq_mailbox_row(s, &cur.mb);
				cur.owner = sqlite3_column_int64(s, 11);
				cur.owner_address = sq_text(s, 12);
				if (cur.owner_address == NULL)
					cur.owner_address = xstrdup("");
				pos = neg = 0;
				has_cur = true;
			}
			if (sqlite3_column_int(s, 13) != 0)
				neg |= (uint32_t)sqlite3_column_int64(s, 14);
			else
				pos |= (uint32_t)sqlite3_column_int64(s, 14);
		}
		sq_reset(s);
	}
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "acl_shared_list");
		store_acl_shared_list_free(list_out, *n_out);
		*n_out = 0;
		sq_reader_put(st, c);
		return -1;
	}
	*err_out = STORE_OK;
	sq_reader_put(st, c);
	return 0;
}

enum store_err
sq_acl_check(struct sq_conn *c, int64_t actor, int64_t mailbox,
    uint32_t need)
{
	uint32_t rights;
	int64_t owner;
	int rc = SQLITE_OK, found;

	found = rights_read(c, actor, mailbox, &rights, &owner, &rc);
	if (found < 0)
		return sq_err(c, rc, "acl_check");
	if (found > 0)
		return STORE_NOT_FOUND;
	return (rights & need) == need ? STORE_OK : STORE_NOT_ALLOWED;
}

/* Writer thread, inside the batch's transaction (a SAVEPOINT of its
 * own): the rights of the actor are read in the same transaction, so a
 * change committed is one the actor was allowed when it committed. */
enum store_err
sq_acl_apply(struct sq_conn *c, struct store_req *req)
{
	const struct store_acl_op *op = &req->acl;
	uint32_t actor_rights, old = 0, rights;
	int64_t owner;
	sqlite3_stmt *s;
	int rc = SQLITE_OK, found;

	found = rights_read(c, op->actor, op->mailbox, &actor_rights, &owner,
	    &rc);
	if (found < 0)
		return sq_err(c, rc, "acl_apply");
	if (found > 0)
		return STORE_NOT_FOUND;
	if (op->actor != 0 && !(actor_rights & STORE_ACL_ADMIN))
		return STORE_NOT_ALLOWED;
	if (op->grantee == owner)
		return STORE_NOT_ALLOWED;
	if (op->grantee != 0) {
		/* The grantee must be an account (no row names one that is
		 * gone: a trigger drops them). */
		if ((s = sq_stmt(c, SQ_ACCOUNT_BY_ID)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, op->grantee);
		rc = sqlite3_step(s);
		sq_reset(s);
		if (rc == SQLITE_DONE)
			return STORE_NOT_FOUND;
		if (rc != SQLITE_ROW)
			return sq_err(c, rc, "acl_apply");
	}
	if ((s = sq_stmt(c, SQ_ACL_GET)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, op->mailbox);
	sqlite3_bind_int64(s, 2, op->grantee);
	sqlite3_bind_int(s, 3, op->is_negative);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		old = (uint32_t)sqlite3_column_int64(s, 0);
	sq_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(c, rc, "acl_apply");
	switch (op->mode) {
	case STORE_ACL_REPLACE:
		rights = op->rights;
		break;
	case STORE_ACL_ADD:
		rights = old | op->rights;
		break;
	case STORE_ACL_REMOVE:
		rights = old & ~op->rights;
		break;
	default:
		rights = 0;
		break;
	}
	rights &= STORE_ACL_ALL;
	s = sq_stmt(c, rights != 0 ? SQ_ACL_PUT : SQ_ACL_DROP);
	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, op->mailbox);
	sqlite3_bind_int64(s, 2, op->grantee);
	sqlite3_bind_int(s, 3, op->is_negative);
	if (rights != 0)
		sqlite3_bind_int64(s, 4, rights);
	rc = sqlite3_step(s);
	sq_reset(s);
	if (rc != SQLITE_DONE)
		return sq_err(c, rc, "acl_apply");
	/* Sessions with the mailbox selected look at their rights again
	 * (a watch wake-up is harmless when nothing else changed). */
	store_req_touch(req, op->mailbox);
	return STORE_OK;
}
