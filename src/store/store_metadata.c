/*
 * store_metadata: IMAP METADATA entries (RFC 5464; store.h): argument
 * checks, the reads, and the STORE_REQ_METADATA requests that carry
 * changes through the writer. The backend writes every entry of one
 * request, checks the account's entry count and commits, all or none.
 */
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int
store_metadata_list(struct store *st, int64_t account, int64_t mailbox,
    struct store_metadata **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	if (mailbox < 0 || account < 0) {
		*err_out = STORE_INVALID;
		return -1;
	}
	return st->be->metadata_list(st, account, mailbox, list_out, n_out,
	    err_out);
}

void
store_metadata_list_free(struct store_metadata **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].name);
		free((*list)[i].value);
	}
	free(*list);
	*list = NULL;
}

void
store_metadata_req_free(struct store_metadata_req **mp)
{
	struct store_metadata_req *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	store_metadata_list_free(&m->entries, m->n);
	free(m);
}

/* A name the store keeps: "/private/..." or "/shared/..." with something
 * after, lowercase printable ASCII. The IMAP layer checks the rest of RFC
 * 5464 §3.2 and says why; this is the store's own guard. */
static bool
is_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n > STORE_METADATA_NAME_MAX || (strncmp(name, "/private/", 9) != 0
	    && strncmp(name, "/shared/", 8) != 0) || name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f ||
		    (name[i] >= 'A' && name[i] <= 'Z'))
			return false;
	return true;
}

/* A copy of op for a request, or NULL when op is not valid. */
static struct store_metadata_req *
req_new(const struct store_metadata_op *op)
{
	struct store_metadata_req *m;

	if (op->account < 0 || op->mailbox < 0 || (op->n > 0 &&
	    op->entries == NULL))
		return NULL;
	for (size_t i = 0; i < op->n; i++)
		if (op->entries[i].name == NULL ||
		    !is_name_valid(op->entries[i].name))
			return NULL;
	m = xcalloc(1, sizeof(*m));
	m->account = op->account;
	m->mailbox = op->mailbox;
	m->entries_max = op->entries_max;
	m->total_max = op->total_max;
	m->n = op->n;
	m->entries = xcalloc(op->n > 0 ? op->n : 1, sizeof(*m->entries));
	for (size_t i = 0; i < op->n; i++) {
		const struct store_metadata *e = &op->entries[i];

		m->entries[i].name = xstrdup(e->name);
		if (e->value != NULL) {
			m->entries[i].value = xmalloc(e->len + 1);
			memcpy(m->entries[i].value, e->value, e->len);
			m->entries[i].value[e->len] = '\0';
			m->entries[i].len = e->len;
		}
	}
	return m;
}

int
store_metadata_submit(struct store *st, const struct store_metadata_op *op,
    struct event_base *base, store_mailbox_cb cb, void *arg)
{
	struct store_req *req = xcalloc(1, sizeof(*req));

	req->kind = STORE_REQ_METADATA;
	req->meta = req_new(op);
	/* A bad request still travels through the writer so that the
	 * callback comes later, from the loop (store.h). */
	if (req->meta == NULL)
		req->err = STORE_INVALID;
	req->base = base;
	req->mailbox_cb = cb;
	req->arg = arg;
	if (store_writer_submit(st, req) < 0) {
		store_metadata_req_free(&req->meta);
		free(req);
		return -1;
	}
	return 0;
}

int
store_metadata_set(struct store *st, const struct store_metadata_op *op,
    enum store_err *err_out)
{
	struct store_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = STORE_REQ_METADATA;
	if ((req.meta = req_new(op)) == NULL) {
		*err_out = STORE_INVALID;
		return -1;
	}
	rc = store_writer_run(st, &req);
	if (rc == 0 && req.err != STORE_OK)
		rc = -1;
	*err_out = req.err;
	free(req.touched);
	store_metadata_req_free(&req.meta);
	return rc;
}
