/*
 * store_recent: which messages are \Recent (RFC 3501 §2.3.2) for
 * IMAP4rev1 sessions. A message is recent in exactly one session: the
 * first to learn of it after it came into its mailbox. Each mailbox keeps
 * the first UID no session has claimed (mailboxes.recent_uid); UIDs only
 * grow, so "claimed" is everything below it.
 *
 * A claim must be atomic across the workers (two sessions selecting the
 * same mailbox at once must not both get a message) without waiting for
 * a commit. So claims are ordered by st->recent_lock and written by the
 * writer without anyone waiting; until that write has committed the claim
 * stays in st->recent, which, not the database, is then the truth. The
 * writer drops the entry after the commit (store_recent_written), so the
 * table holds only claims in flight: a few entries, searched linearly.
 * A mailbox with no entry is read from the database under the lock, so a
 * value never goes backwards while the server runs. A crash may lose the
 * last claims (their messages are recent again): the RFC asks nothing of
 * recent state across restarts.
 *
 * Any thread may call in; store_recent_written runs on the writer thread.
 * Lock order: recent_lock, then st->lock (store_writer_submit).
 */
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* Index into st->recent of the mailbox's claim, or SIZE_MAX. Called with
 * recent_lock held. */
static size_t
claim_find(const struct store *st, int64_t mailbox, uint32_t uidvalidity)
{
	for (size_t i = 0; i < st->nrecent; i++) {
		if (st->recent[i].mailbox == mailbox &&
		    st->recent[i].uidvalidity == uidvalidity)
			return i;
	}
	return SIZE_MAX;
}

/* The first unclaimed UID of the mailbox, with recent_lock held. */
static int
first_unclaimed(struct store *st, int64_t mailbox, uint32_t uidvalidity,
    uint32_t *first_out, enum store_err *err_out)
{
	size_t at = claim_find(st, mailbox, uidvalidity);

	if (at != SIZE_MAX) {
		*first_out = st->recent[at].uid;
		return 0;
	}
	return st->be->recent_get(st, mailbox, uidvalidity, first_out,
	    err_out);
}

int
store_recent_peek(struct store *st, int64_t mailbox, uint32_t uidvalidity,
    uint32_t *first_out, enum store_err *err_out)
{
	int rc;

	pthread_mutex_lock(&st->recent_lock);
	rc = first_unclaimed(st, mailbox, uidvalidity, first_out, err_out);
	pthread_mutex_unlock(&st->recent_lock);
	return rc;
}

int
store_recent_count(struct store *st, int64_t mailbox, uint32_t uidvalidity,
    uint32_t *n_out, enum store_err *err_out)
{
	uint32_t first;

	*n_out = 0;
	if (store_recent_peek(st, mailbox, uidvalidity, &first, err_out) < 0)
		return -1;
	return st->be->recent_count(st, mailbox, first, n_out, err_out);
}

int
store_recent_claim(struct store *st, int64_t mailbox, uint32_t uidvalidity,
    uint32_t uid_end, uint32_t *first_out, enum store_err *err_out)
{
	struct store_req *req;
	size_t at;

	pthread_mutex_lock(&st->recent_lock);
	if (first_unclaimed(st, mailbox, uidvalidity, first_out,
	    err_out) < 0) {
		pthread_mutex_unlock(&st->recent_lock);
		return -1;
	}
	if (*first_out >= uid_end) {
		/* Nothing new: no write. */
		pthread_mutex_unlock(&st->recent_lock);
		return 0;
	}
	at = claim_find(st, mailbox, uidvalidity);
	if (at == SIZE_MAX) {
		if (st->nrecent == st->recent_cap) {
			st->recent_cap = st->recent_cap ?
			    st->recent_cap * 2 : 8;
			st->recent = xrealloc(st->recent,
			    st->recent_cap * sizeof(*st->recent));
		}
		at = st->nrecent++;
		st->recent[at].mailbox = mailbox;
		st->recent[at].uidvalidity = uidvalidity;
	}
	st->recent[at].uid = uid_end;
	req = xcalloc(1, sizeof(*req));
	req->kind = STORE_REQ_RECENT_SET;
	req->id = mailbox;
	req->uidvalidity = uidvalidity;
	req->recent_uid = uid_end;
	/* When the store is closing the claim stays in memory only, which
	 * is all the rest of this run needs. */
	if (store_writer_submit(st, req) < 0)
		free(req);
	pthread_mutex_unlock(&st->recent_lock);
	return 0;
}

void
store_recent_written(struct store *st, const struct store_req *req)
{
	size_t at;

	if (req->err != STORE_OK) {
		/* The entry stays (the database is behind it): a later
		 * claim's write may succeed and take it away. */
		log_warn(NULL, "store.recent_write_failed mailbox=%lld "
		    "error=\"%s\"", (long long)req->id,
		    store_err_text(req->err));
		return;
	}
	pthread_mutex_lock(&st->recent_lock);
	at = claim_find(st, req->id, req->uidvalidity);
	/* A later claim of the same mailbox still waits for its own write:
	 * its entry stays until then. */
	if (at != SIZE_MAX && st->recent[at].uid <= req->recent_uid)
		st->recent[at] = st->recent[--st->nrecent];
	pthread_mutex_unlock(&st->recent_lock);
}

void
store_recent_deinit(struct store *st)
{
	free(st->recent);
	st->recent = NULL;
	st->nrecent = st->recent_cap = 0;
}
