/*
 * store_queue: the outbound queue's part of the store API (store.h,
 * Outbound queue): argument checks, the STORE_REQ_QUEUE requests that
 * carry every change through the writer, and freeing what reads return.
 * The backend does the rest (store_sqlite_queue.c).
 */
#include "store/store_backend.h"
#include "store/store_queue_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* The most entries one claim may take: a runner asks for a few dozen. */
#define QUEUE_CLAIM_MAX 10000
/* Longest reply kept as an entry's last reply, in bytes. */
#define QUEUE_REPLY_MAX 2048

void
store_queue_entry_deinit(struct store_queue_entry *e)
{
	free(e->sender);
	free(e->rcpt);
	free(e->domain);
	free(e->dsn_envelope);
	free(e->dsn_rcpt);
	free(e->last_reply);
	memset(e, 0, sizeof(*e));
}

void
store_queue_list_free(struct store_queue_entry **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_queue_entry_deinit(&(*list)[i]);
	free(*list);
	*list = NULL;
}

char *
store_queue_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	char *d = xstrdup(at != NULL ? at + 1 : "");

	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

int
store_queue_list(struct store *st, struct store_queue_entry **list_out,
    size_t *n_out, enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	return st->be->queue_list(st, list_out, n_out, err_out);
}

int
store_queue_stats(struct store *st, uint64_t *n_out, int64_t *oldest_out,
    enum store_err *err_out)
{
	*n_out = 0;
	*oldest_out = 0;
	return st->be->queue_stats(st, n_out, oldest_out, err_out);
}

int
store_queue_get(struct store *st, int64_t id,
    struct store_queue_entry *e_out, enum store_err *err_out)
{
	memset(e_out, 0, sizeof(*e_out));
	if (id <= 0) {
		*err_out = STORE_NOT_FOUND;
		return -1;
	}
	return st->be->queue_get(st, id, e_out, err_out);
}

/* Runs op through the writer and waits. On failure the op's results are
 * freed; on success the caller takes them. */
static int
op_run(struct store *st, struct store_queue_op *op, enum store_err *err_out)
{
	struct store_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = STORE_REQ_QUEUE;
	req.qop = op;
	rc = store_writer_run(st, &req);
	if (rc == 0 && req.err != STORE_OK)
		rc = -1;
	*err_out = req.err;
	free(req.touched);
	store_req_events_clear(&req);
	if (rc < 0) {
		store_queue_list_free(&op->list, op->n);
		op->n = 0;
		store_queue_entry_deinit(&op->entry);
	}
	return rc;
}

int
store_queue_claim(struct store *st, int64_t now, int64_t lease, size_t max,
    struct store_queue_entry **list_out, size_t *n_out,
    enum store_err *err_out)
{
	struct store_queue_op op = {
		.kind = STORE_QUEUE_OP_CLAIM,
		.now = now,
		.lease = lease,
		.max = max,
	};

	*list_out = NULL;
	*n_out = 0;
	if (max == 0 || max > QUEUE_CLAIM_MAX || lease <= 0) {
		*err_out = STORE_INVALID;
		return -1;
	}
	if (op_run(st, &op, err_out) < 0)
		return -1;
	*list_out = op.list;
	*n_out = op.n;
	return 0;
}

int
store_queue_unlease_all(struct store *st, enum store_err *err_out)
{
	struct store_queue_op op = { .kind = STORE_QUEUE_OP_UNLEASE_ALL };

	return op_run(st, &op, err_out);
}

int
store_queue_finish(struct store *st, int64_t id,
    enum store_queue_outcome outcome, const char *reply,
    int64_t next_attempt, struct store_queue_entry *e_out,
    enum store_err *err_out)
{
	struct store_queue_op op = {
		.kind = STORE_QUEUE_OP_FINISH,
		.id = id,
		.outcome = outcome,
		.next_attempt = next_attempt,
		.want_entry = e_out != NULL,
	};
	char *cut = NULL;
	int rc;

	if (e_out != NULL)
		memset(e_out, 0, sizeof(*e_out));
	if (id <= 0 || (outcome != STORE_QUEUE_DELIVERED &&
	    outcome != STORE_QUEUE_DEFERRED && outcome != STORE_QUEUE_FAILED)) {
		*err_out = STORE_INVALID;
		return -1;
	}
	/* A remote server's reply is its to choose: keep a bounded,
	 * one-line form of it. */
	if (reply != NULL) {
		size_t len = strnlen(reply, QUEUE_REPLY_MAX);

		cut = xstrndup(reply, len);
		for (char *p = cut; *p != '\0'; p++) {
			if (*p == '\r' || *p == '\n' ||
			    (unsigned char)*p < 0x20)
				*p = ' ';
		}
	}
	op.reply = cut;
	rc = op_run(st, &op, err_out);
	free(cut);
	if (rc == 0 && e_out != NULL)
		*e_out = op.entry;
	else
		store_queue_entry_deinit(&op.entry);
	return rc;
}

int
store_queue_warned(struct store *st, int64_t id, enum store_err *err_out)
{
	struct store_queue_op op = {
		.kind = STORE_QUEUE_OP_WARNED,
		.id = id,
	};

	return op_run(st, &op, err_out);
}

int
store_queue_act(struct store *st, int64_t id, enum store_queue_action action,
    int64_t now, size_t *n_out, enum store_err *err_out)
{
	struct store_queue_op op = {
		.kind = STORE_QUEUE_OP_ACT,
		.id = id,
		.action = action,
		.now = now,
	};
	int rc;

	if (n_out != NULL)
		*n_out = 0;
	if (id < 0 || (action != STORE_QUEUE_HOLD &&
	    action != STORE_QUEUE_RELEASE && action != STORE_QUEUE_RETRY &&
	    action != STORE_QUEUE_DELETE)) {
		*err_out = STORE_INVALID;
		return -1;
	}
	rc = op_run(st, &op, err_out);
	if (rc == 0 && n_out != NULL)
		*n_out = op.changed;
	return rc;
}
