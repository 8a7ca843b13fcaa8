/*
 * store_migrate: the migration map of postern migrate (store.h): argument
 * checks and the STORE_REQ_MIGRATE requests that carry its changes
 * through the writer; the entry a delivery carries is written by the
 * backend's delivery code in the same commit as the message.
 */
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
entry_copy(struct store_migrate_entry *dst,
    const struct store_migrate_entry *src)
{
	*dst = *src;
	dst->key = xstrdup(src->key);
	dst->keywords = dup_or_null(src->keywords);
	dst->message_id = dup_or_null(src->message_id);
	dst->hash = dup_or_null(src->hash);
}

static void
entry_deinit(struct store_migrate_entry *e)
{
	free(e->key);
	free(e->keywords);
	free(e->message_id);
	free(e->hash);
	memset(e, 0, sizeof(*e));
}

void
store_migrate_op_free(struct store_migrate_op **opp)
{
	struct store_migrate_op *op = *opp;

	if (op == NULL)
		return;
	*opp = NULL;
	free(op->source);
	free(op->folder);
	entry_deinit(&op->entry);
	free(op);
}

static struct store_migrate_op *
op_new(enum store_migrate_op_kind kind, int64_t account, const char *source,
    const char *folder)
{
	struct store_migrate_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->account = account;
	op->source = xstrdup(source);
	op->folder = xstrdup(folder);
	return op;
}

void
store_delivery_migrate(struct store_delivery *d, int64_t account,
    const char *source, const char *folder,
    const struct store_migrate_entry *e)
{
	store_migrate_op_free(&d->migrate);
	if (source == NULL || folder == NULL || e == NULL || e->key == NULL)
		return;
	d->migrate = op_new(STORE_MIGRATE_OP_PUT, account, source, folder);
	entry_copy(&d->migrate->entry, e);
}

static int
invalid(enum store_err *err_out)
{
	*err_out = STORE_INVALID;
	return -1;
}

int
store_migrate_list(struct store *st, int64_t account, const char *source,
    const char *folder, struct store_migrate_entry **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	if (source == NULL || folder == NULL)
		return invalid(err_out);
	return st->be->migrate_list(st, account, source, folder, list_out,
	    n_out, err_out);
}

void
store_migrate_list_free(struct store_migrate_entry **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		entry_deinit(&(*list)[i]);
	free(*list);
	*list = NULL;
}

static int
op_run(struct store *st, struct store_migrate_op *op, enum store_err *err_out)
{
	struct store_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = STORE_REQ_MIGRATE;
	req.mop = op;
	rc = store_writer_run(st, &req);
	if (rc == 0 && req.err != STORE_OK)
		rc = -1;
	*err_out = req.err;
	free(req.touched);
	store_req_events_clear(&req);
	store_migrate_op_free(&op);
	return rc;
}

int
store_migrate_put(struct store *st, int64_t account, const char *source,
    const char *folder, const struct store_migrate_entry *e,
    enum store_err *err_out)
{
	struct store_migrate_op *op;

	if (source == NULL || folder == NULL || e == NULL || e->key == NULL)
		return invalid(err_out);
	op = op_new(STORE_MIGRATE_OP_PUT, account, source, folder);
	entry_copy(&op->entry, e);
	return op_run(st, op, err_out);
}

int
store_migrate_del(struct store *st, int64_t account, const char *source,
    const char *folder, uint32_t uidvalidity, const char *key,
    enum store_err *err_out)
{
	struct store_migrate_op *op;

	if (source == NULL || folder == NULL)
		return invalid(err_out);
	op = op_new(STORE_MIGRATE_OP_DEL, account, source, folder);
	op->entry.uidvalidity = uidvalidity;
	op->entry.key = dup_or_null(key);
	return op_run(st, op, err_out);
}

int
store_migrate_folder_get(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t *uidvalidity_out,
    uint64_t *modseq_out, enum store_err *err_out)
{
	if (source == NULL || folder == NULL)
		return invalid(err_out);
	return st->be->migrate_folder_get(st, account, source, folder,
	    uidvalidity_out, modseq_out, err_out);
}

int
store_migrate_folder_set(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t uidvalidity,
    uint64_t modseq, enum store_err *err_out)
{
	struct store_migrate_op *op;

	if (source == NULL || folder == NULL)
		return invalid(err_out);
	op = op_new(STORE_MIGRATE_OP_FOLDER_SET, account, source, folder);
	op->uidvalidity = uidvalidity;
	op->modseq = modseq;
	return op_run(st, op, err_out);
}
