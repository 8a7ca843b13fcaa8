/*
 * store_sqlite_metadata: IMAP METADATA entries of the embedded backend
 * (schema v13, store.h). Reads run on a pooled read connection; changes
 * on the writer thread, in the batch's transaction, one SAVEPOINT per
 * request, so that a request refused half-way (too many entries, a bad
 * special use) leaves nothing.
 */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

int
sq_metadata_list(struct store *st, int64_t account, int64_t mailbox,
    struct store_metadata **list_out, size_t *n_out,
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
	if ((s = sq_stmt(c, SQ_METADATA_LIST)) != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, account);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct store_metadata *e;
			const void *v = sqlite3_column_blob(s, 1);
			size_t len = (size_t)sqlite3_column_bytes(s, 1);

			if (*n_out == cap) {
				cap = cap ? cap * 2 : 16;
				*list_out = xrealloc(*list_out,
				    cap * sizeof(**list_out));
			}
			e = &(*list_out)[(*n_out)++];
			e->name = sq_text(s, 0);
			if (e->name == NULL)
				e->name = xstrdup("");
			e->value = xmalloc(len + 1);
			if (len > 0)
				memcpy(e->value, v, len);
			e->value[len] = '\0';
			e->len = len;
		}
		sq_reset(s);
	}
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "metadata_list");
		store_metadata_list_free(list_out, *n_out);
		*n_out = 0;
		sq_reader_put(st, c);
		return -1;
	}
	sq_reader_put(st, c);
	*err_out = STORE_OK;
	return 0;
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

/* RFC 6154 §4 (via RFC 5464): /private/specialuse of a mailbox is its
 * special use, one attribute here (the store keeps one a mailbox). */
static enum store_err
special_set(struct sq_conn *c, int64_t mailbox, const char *value,
    size_t len)
{
	int special = STORE_SPECIAL_NONE;
	sqlite3_stmt *s;

	if (value != NULL && strlen(value) != len)
		return STORE_INVALID;
	if (value != NULL && value[0] != '\0') {
		for (special = STORE_SPECIAL_SENT;
		    special <= STORE_SPECIAL_FLAGGED; special++)
			if (strcasecmp(value, store_special_name(special)) ==
			    0)
				break;
		if (special > STORE_SPECIAL_FLAGGED)
			return STORE_INVALID;
	}
	if ((s = sq_stmt(c, SQ_METADATA_SPECIAL)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, mailbox);
	sqlite3_bind_int(s, 2, special);
	return step(c, s, "metadata_special");
}

enum store_err
sq_metadata_apply(struct sq_conn *c, struct store_req *req)
{
	const struct store_metadata_req *m = req->meta;
	sqlite3_stmt *s;
	enum store_err err;
	int64_t count, total;
	int rc;

	if (m->mailbox != 0) {
		/* Still there, and still the account's: the name was looked
		 * up before the request queued. */
		if ((s = sq_stmt(c, SQ_METADATA_MAILBOX)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, m->mailbox);
		sqlite3_bind_int64(s, 2, m->account);
		rc = sqlite3_step(s);
		sq_reset(s);
		if (rc == SQLITE_DONE)
			return STORE_NOT_FOUND;
		if (rc != SQLITE_ROW)
			return sq_err(c, rc, "metadata_mailbox");
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct store_metadata *e = &m->entries[i];
		bool is_private = strncmp(e->name, "/private/", 9) == 0;
		/* Shared server entries are everyone's: account 0. */
		int64_t owner = !is_private && m->mailbox == 0 ? 0 :
		    m->account;

		if (is_private && m->mailbox != 0 &&
		    strcmp(e->name, "/private/specialuse") == 0) {
			err = special_set(c, m->mailbox, e->value, e->len);
			if (err != STORE_OK)
				return err;
			continue;
		}
		s = sq_stmt(c, e->value != NULL ? SQ_METADATA_PUT :
		    SQ_METADATA_DEL);
		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, owner);
		sqlite3_bind_int64(s, 2, m->mailbox);
		sqlite3_bind_text(s, 3, e->name, -1, SQLITE_STATIC);
		if (e->value != NULL)
			sqlite3_bind_blob64(s, 4, e->value, e->len,
			    SQLITE_STATIC);
		if ((err = step(c, s, "metadata_put")) != STORE_OK)
			return err;
	}
	/* RFC 5464 §4.3: TOOMANY, counted after the change so that a
	 * request that deletes as much as it adds always passes. */
	if ((s = sq_stmt(c, SQ_METADATA_COUNT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, m->account);
	rc = sqlite3_step(s);
	count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
	sq_reset(s);
	if (rc != SQLITE_ROW)
		return sq_err(c, rc, "metadata_count");
	if (m->account != 0 && (uint64_t)count > m->entries_max)
		return STORE_NOT_ALLOWED;
	/* The bytes too: entries_max values of imap_metadata_size each were
	 * 64 MB an account could keep outside its quota, and GETMETADATA
	 * reads a mailbox's values into memory. */
	if (m->account != 0 && m->total_max != 0 &&
	    (uint64_t)total > m->total_max)
		return STORE_OVER_QUOTA;
	return STORE_OK;
}
