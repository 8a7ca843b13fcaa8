/*
 * store_sqlite_queue: the outbound queue of the embedded backend. Reads
 * run on a pooled read connection; changes run on the writer thread, in
 * the batch's transaction (sq_queue_apply, called from
 * store_sqlite_write.c). A queue entry holds a reference to its blob
 * (schema v2 triggers), so removing the last entry of a message that no
 * mailbox holds puts the body on blob_gc, and the writer unlinks the file
 * after the commit like an expunged message's.
 */
#include "store/store_sqlite.h"
#include "store/store_queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* Fills *e_out from a row of SQ_QUEUE_COLS. */
static void
queue_row(sqlite3_stmt *s, struct store_queue_entry *e_out)
{
	memset(e_out, 0, sizeof(*e_out));
	e_out->id = sqlite3_column_int64(s, 0);
	e_out->blob = sqlite3_column_int64(s, 1);
	e_out->size = (uint64_t)sqlite3_column_int64(s, 2);
	e_out->sender = sq_text(s, 3);
	if (e_out->sender == NULL)
		e_out->sender = xstrdup("");
	e_out->rcpt = sq_text(s, 4);
	if (e_out->rcpt == NULL)
		e_out->rcpt = xstrdup("");
	e_out->domain = store_queue_domain(e_out->rcpt);
	e_out->dsn_envelope = sq_text(s, 5);
	e_out->dsn_rcpt = sq_text(s, 6);
	e_out->attempts = (uint32_t)sqlite3_column_int64(s, 7);
	e_out->created = sqlite3_column_int64(s, 8);
	e_out->next_attempt = sqlite3_column_int64(s, 9);
	e_out->lease_until = sqlite3_column_int64(s, 10);
	e_out->last_reply = sq_text(s, 11);
	e_out->state = sqlite3_column_int64(s, 12) != 0 ? STORE_QUEUE_HELD :
	    STORE_QUEUE_QUEUED;
	e_out->is_warned = sqlite3_column_int64(s, 13) != 0;
	e_out->is_authenticated = sqlite3_column_int64(s, 14) != 0;
	e_out->is_report = sqlite3_column_int64(s, 15) != 0;
}

/* Steps s (bound by the caller) and appends every row to *list_out.
 * Returns the final SQLite code (SQLITE_DONE when all went well). */
static int
rows_collect(sqlite3_stmt *s, struct store_queue_entry **list_out,
    size_t *n_out)
{
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 16;
			*list_out = xrealloc(*list_out,
			    cap * sizeof(**list_out));
		}
		queue_row(s, &(*list_out)[(*n_out)++]);
	}
	return rc;
}

int
sq_queue_list(struct store *st, struct store_queue_entry **list_out,
    size_t *n_out, enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s;
	int rc = SQLITE_ERROR;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	if ((s = sq_stmt(c, SQ_QUEUE_LIST)) != NULL)
		rc = rows_collect(s, list_out, n_out);
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "queue_list");
		store_queue_list_free(list_out, *n_out);
		*n_out = 0;
		sq_reader_put(st, c);
		return -1;
	}
	sq_reader_put(st, c);
	*err_out = STORE_OK;
	return 0;
}

int
sq_queue_stats(struct store *st, uint64_t *n_out, int64_t *oldest_out,
    enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s;
	int rc = SQLITE_ERROR;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	if ((s = sq_stmt(c, SQ_QUEUE_STATS)) != NULL &&
	    (rc = sqlite3_step(s)) == SQLITE_ROW) {
		*n_out = (uint64_t)sqlite3_column_int64(s, 0);
		*oldest_out = sqlite3_column_int64(s, 1);
		rc = SQLITE_DONE;
	}
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "queue_stats");
		sq_reader_put(st, c);
		return -1;
	}
	sq_reader_put(st, c);
	*err_out = STORE_OK;
	return 0;
}

/* Reads entry id on c into *e_out: STORE_OK, STORE_NOT_FOUND or
 * STORE_TEMP. */
static enum store_err
entry_get(struct sq_conn *c, int64_t id, struct store_queue_entry *e_out)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_QUEUE_GET);
	enum store_err err;
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		queue_row(s, e_out);
		err = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		err = STORE_NOT_FOUND;
	} else {
		err = sq_err(c, rc, "queue_get");
	}
	sq_reset(s);
	return err;
}

int
sq_queue_get(struct store *st, int64_t id, struct store_queue_entry *e_out,
    enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	*err_out = entry_get(c, id, e_out);
	sq_reader_put(st, c);
	return *err_out == STORE_OK ? 0 : -1;
}

/* ---- Changes, on the writer ----------------------------------------- */

/* Runs s (bound) without rows; returns STORE_OK or STORE_TEMP and adds
 * the rows it changed to *changed (may be NULL). */
static enum store_err
step(struct sq_conn *c, sqlite3_stmt *s, const char *what, size_t *changed)
{
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	rc = sqlite3_step(s);
	sq_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_err(c, rc, what);
	if (changed != NULL)
		*changed += (size_t)sqlite3_changes(c->db);
	return STORE_OK;
}

static enum store_err
op_claim(struct sq_conn *c, struct store_queue_op *op)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_QUEUE_DUE);
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, op->now);
	sqlite3_bind_int64(s, 2, (int64_t)op->max);
	rc = rows_collect(s, &op->list, &op->n);
	sq_reset(s);
	if (rc != SQLITE_DONE)
		return sq_err(c, rc, "queue_due");
	for (size_t i = 0; i < op->n; i++) {
		enum store_err err;

		s = sq_stmt(c, SQ_QUEUE_LEASE);
		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, op->list[i].id);
		sqlite3_bind_int64(s, 2, op->now + op->lease);
		if ((err = step(c, s, "queue_lease", NULL)) != STORE_OK)
			return err;
		op->list[i].lease_until = op->now + op->lease;
	}
	return STORE_OK;
}

static enum store_err
op_finish(struct sq_conn *c, struct store_queue_op *op)
{
	struct store_queue_entry e;
	enum store_err err;
	sqlite3_stmt *s;

	if ((err = entry_get(c, op->id, &e)) != STORE_OK)
		return err;
	if (op->want_entry)
		op->entry = e;
	else
		store_queue_entry_deinit(&e);
	if (op->outcome == STORE_QUEUE_DEFERRED) {
		s = sq_stmt(c, SQ_QUEUE_DEFER);
		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, op->id);
		if (op->reply != NULL)
			sqlite3_bind_text(s, 2, op->reply, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 2);
		sqlite3_bind_int64(s, 3, op->next_attempt);
		return step(c, s, "queue_defer", &op->changed);
	}
	s = sq_stmt(c, SQ_QUEUE_DELETE);
	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, op->id);
	return step(c, s, "queue_delete", &op->changed);
}

static enum store_err
op_act(struct sq_conn *c, struct store_queue_op *op)
{
	enum sq_stmt one, all;
	sqlite3_stmt *s;

	switch (op->action) {
	case STORE_QUEUE_HOLD:
		one = SQ_QUEUE_HOLD;
		all = SQ_QUEUE_HOLD_ALL;
		break;
	case STORE_QUEUE_RELEASE:
		one = SQ_QUEUE_RELEASE;
		all = SQ_QUEUE_RELEASE_ALL;
		break;
	case STORE_QUEUE_RETRY:
		one = SQ_QUEUE_RETRY;
		all = SQ_QUEUE_RETRY_ALL;
		break;
	case STORE_QUEUE_DELETE:
		one = SQ_QUEUE_DELETE;
		all = SQ_QUEUE_DELETE_ALL;
		break;
	default:
		return STORE_INVALID;
	}
	if (op->id != 0) {
		struct store_queue_entry e;
		enum store_err err = entry_get(c, op->id, &e);

		if (err != STORE_OK)
			return err;
		store_queue_entry_deinit(&e);
		if ((s = sq_stmt(c, one)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, op->id);
		if (op->action == STORE_QUEUE_HOLD)
			sqlite3_bind_int64(s, 2, 1);
		else if (op->action != STORE_QUEUE_DELETE)
			sqlite3_bind_int64(s, 2, op->now);
		return step(c, s, "queue_act", &op->changed);
	}
	if ((s = sq_stmt(c, all)) == NULL)
		return STORE_TEMP;
	if (op->action == STORE_QUEUE_HOLD)
		sqlite3_bind_int64(s, 1, 1);
	else if (op->action != STORE_QUEUE_DELETE)
		sqlite3_bind_int64(s, 1, op->now);
	return step(c, s, "queue_act_all", &op->changed);
}

enum store_err
sq_queue_apply(struct sq_conn *c, struct store_req *req)
{
	struct store_queue_op *op = req->qop;
	sqlite3_stmt *s;

	/* A retried batch runs the request again from the start. */
	store_queue_list_free(&op->list, op->n);
	op->n = 0;
	store_queue_entry_deinit(&op->entry);
	op->changed = 0;
	switch (op->kind) {
	case STORE_QUEUE_OP_CLAIM:
		return op_claim(c, op);
	case STORE_QUEUE_OP_UNLEASE_ALL:
		return step(c, sq_stmt(c, SQ_QUEUE_UNLEASE_ALL),
		    "queue_unlease", &op->changed);
	case STORE_QUEUE_OP_FINISH:
		return op_finish(c, op);
	case STORE_QUEUE_OP_WARNED:
		if ((s = sq_stmt(c, SQ_QUEUE_WARNED)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, op->id);
		if (step(c, s, "queue_warned", &op->changed) != STORE_OK)
			return STORE_TEMP;
		return op->changed > 0 ? STORE_OK : STORE_NOT_FOUND;
	case STORE_QUEUE_OP_ACT:
		return op_act(c, op);
	}
	panic("store: queue op %d", (int)op->kind);
}
