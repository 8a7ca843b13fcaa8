/*
 * store_sqlite_migrate: the migration map of the embedded backend (schema
 * v7, store.h). Reads run on a pooled read connection; changes on the
 * writer thread, in the batch's transaction: a STORE_REQ_MIGRATE, or the
 * entry a delivery carries, written with the message it names.
 */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static void
bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static void
bind_folder(sqlite3_stmt *s, int64_t account, const char *source,
    const char *folder)
{
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, folder, -1, SQLITE_STATIC);
}

int
sq_migrate_list(struct store *st, int64_t account, const char *source,
    const char *folder, struct store_migrate_entry **list_out, size_t *n_out,
    enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = SQLITE_ERROR;

	*list_out = NULL;
	*n_out = 0;
	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	if ((s = sq_stmt(c, SQ_MIGRATE_LIST)) != NULL) {
		bind_folder(s, account, source, folder);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct store_migrate_entry *e;

			if (*n_out == cap) {
				cap = cap ? cap * 2 : 64;
				*list_out = xrealloc(*list_out,
				    cap * sizeof(**list_out));
			}
			e = &(*list_out)[(*n_out)++];
			memset(e, 0, sizeof(*e));
			e->uidvalidity = (uint32_t)sqlite3_column_int64(s, 0);
			e->key = sq_text(s, 1);
			if (e->key == NULL)
				e->key = xstrdup("");
			e->mailbox = sqlite3_column_int64(s, 2);
			e->uid = (uint32_t)sqlite3_column_int64(s, 3);
			e->flags = (uint32_t)sqlite3_column_int64(s, 4);
			e->keywords = sq_text(s, 5);
			e->message_id = sq_text(s, 6);
			e->hash = sq_text(s, 7);
			e->size = (uint64_t)sqlite3_column_int64(s, 8);
		}
		sq_reset(s);
	}
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "migrate_list");
		store_migrate_list_free(list_out, *n_out);
		*n_out = 0;
		sq_reader_put(st, c);
		return -1;
	}
	sq_reader_put(st, c);
	*err_out = STORE_OK;
	return 0;
}

int
sq_migrate_folder_get(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t *uidvalidity_out,
    uint64_t *modseq_out, enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s;
	int rc = SQLITE_ERROR;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	if ((s = sq_stmt(c, SQ_MIGRATE_FOLDER_GET)) != NULL) {
		bind_folder(s, account, source, folder);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*uidvalidity_out = (uint32_t)sqlite3_column_int64(s, 0);
			*modseq_out = (uint64_t)sqlite3_column_int64(s, 1);
		}
		sq_reset(s);
	}
	if (rc == SQLITE_ROW)
		*err_out = STORE_OK;
	else if (rc == SQLITE_DONE)
		*err_out = STORE_NOT_FOUND;
	else
		*err_out = sq_err(c, rc, "migrate_folder_get");
	sq_reader_put(st, c);
	return *err_out == STORE_OK ? 0 : -1;
}

static enum store_err
step(struct sq_conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	sq_reset(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return STORE_OK;
	return sq_err(c, rc, what);
}

enum store_err
sq_migrate_apply(struct sq_conn *c, const struct store_migrate_op *op,
    int64_t mailbox, uint32_t uid)
{
	const struct store_migrate_entry *e = &op->entry;
	sqlite3_stmt *s;

	switch (op->kind) {
	case STORE_MIGRATE_OP_PUT:
		if ((s = sq_stmt(c, SQ_MIGRATE_PUT)) == NULL)
			return STORE_TEMP;
		bind_folder(s, op->account, op->source, op->folder);
		sqlite3_bind_int64(s, 4, e->uidvalidity);
		sqlite3_bind_text(s, 5, e->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 6, mailbox != 0 ? mailbox : e->mailbox);
		sqlite3_bind_int64(s, 7, mailbox != 0 ? uid : e->uid);
		sqlite3_bind_int64(s, 8, e->flags);
		bind_text_or_null(s, 9, e->keywords);
		bind_text_or_null(s, 10, e->message_id);
		bind_text_or_null(s, 11, e->hash);
		sqlite3_bind_int64(s, 12, (int64_t)e->size);
		return step(c, s, "migrate_put");
	case STORE_MIGRATE_OP_DEL:
		if ((s = sq_stmt(c, SQ_MIGRATE_DEL)) == NULL)
			return STORE_TEMP;
		bind_folder(s, op->account, op->source, op->folder);
		sqlite3_bind_int64(s, 4, e->uidvalidity);
		bind_text_or_null(s, 5, e->key);
		return step(c, s, "migrate_del");
	case STORE_MIGRATE_OP_FOLDER_SET:
		if ((s = sq_stmt(c, SQ_MIGRATE_FOLDER_SET)) == NULL)
			return STORE_TEMP;
		bind_folder(s, op->account, op->source, op->folder);
		sqlite3_bind_int64(s, 4, op->uidvalidity);
		sqlite3_bind_int64(s, 5, (int64_t)op->modseq);
		return step(c, s, "migrate_folder_set");
	}
	panic("store: migrate op %d", (int)op->kind);
}
