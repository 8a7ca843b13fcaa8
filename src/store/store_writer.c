/*
 * store_writer: the one thread that changes the store (DESIGN.md, group
 * commit). Callers queue requests; the writer takes every queued request
 * (up to st->batch_max), has the backend apply them all in one
 * transaction with one sync of the message files and one commit, and only
 * then completes each request: an asynchronous one by scheduling its
 * callback on the caller's event_base (event_base_once, so never before
 * the submit function has returned), a synchronous one by waking its
 * waiter. After the commit it tells the watches of every mailbox touched.
 * When the queue is empty it lets the backend do background work (the
 * full-text index) in small steps, looking at the queue between them.
 */
#include "store/store_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

static void
req_free_async(struct store_req *req)
{
	if (req->d != NULL) {
		store_delivery_discard(req->d);
		store_delivery_free(&req->d);
	}
	free(req->dres);
	free(req->owned_uids);
	free(req->owned_keywords);
	free(req->owned_s1);
	free(req->owned_s2);
	free(req->touched);
	store_metadata_req_free(&req->meta);
	store_req_events_clear(req);
	store_change_result_deinit(&req->cres);
	free(req);
}

/* On the caller's loop: the change is durable (or failed). */
static void
on_req_done(evutil_socket_t fd, short what, void *arg)
{
	struct store_req *req = arg;

	(void)fd;
	(void)what;
	if (req->kind == STORE_REQ_DELIVERY) {
		req->delivery_cb(req->arg, req->dres, req->ndres);
	} else if (req->mailbox_cb != NULL) {
		req->mailbox_cb(req->arg, req->err);
	} else {
		req->cres.err = req->err;
		req->change_cb(req->arg, &req->cres);
	}
	req_free_async(req);
}

static void
req_complete(struct store *st, struct store_req *req)
{
	/* The body file is the store's now, or it goes. */
	if (req->d != NULL)
		store_delivery_discard(req->d);
	if (req->done_cond != NULL) {
		pthread_cond_t *cond = req->done_cond;

		/* The waiter may free req as soon as the lock is released. */
		pthread_mutex_lock(&st->lock);
		req->is_done = true;
		pthread_cond_signal(cond);
		pthread_mutex_unlock(&st->lock);
		return;
	}
	if (req->base == NULL) {
		/* Nobody waits: a \Recent claim's write. */
		if (req->kind == STORE_REQ_RECENT_SET)
			store_recent_written(st, req);
		req_free_async(req);
		return;
	}
	if (event_base_once(req->base, -1, EV_TIMEOUT, on_req_done, req,
	    NULL) < 0)
		panic("store: event_base_once failed; cannot complete a "
		    "request");
}

static void
batch_finish(struct store *st, struct store_req **reqs, size_t n)
{
	int64_t *touched = NULL;
	size_t ntouched = 0, cap = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < reqs[i]->ntouched; j++) {
			int64_t mb = reqs[i]->touched[j];
			size_t k;

			for (k = 0; k < ntouched && touched[k] != mb; k++)
				;
			if (k < ntouched)
				continue;
			if (ntouched == cap) {
				cap = cap ? cap * 2 : 16;
				touched = xrealloc(touched,
				    cap * sizeof(*touched));
			}
			touched[ntouched++] = mb;
		}
	}
	if (ntouched > 0)
		store_watch_notify(st, touched, ntouched);
	free(touched);
	store_account_watch_notify(st, reqs, n);
	for (size_t i = 0; i < n; i++)
		req_complete(st, reqs[i]);
}

static void
batch_run(struct store *st, struct store_req **reqs, size_t n)
{
	struct store_req **live = xmalloc(n * sizeof(*live));
	size_t nlive = 0;

	/* Requests that failed before reaching us (a body that could not
	 * be written, invalid arguments of an async change) only need
	 * completing. */
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->err == STORE_OK)
			live[nlive++] = reqs[i];
	}
	if (nlive > 0) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		st->be->batch_run(st, live, nlive);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* A check (alone in its batch) reads every file: it is
		 * not a commit anyone waits for. */
		if (live[0]->kind != STORE_REQ_CHECK)
				metrics_commit_observe((uint64_t)((t1.tv_sec -
			    t0.tv_sec) * 1000000LL + (t1.tv_nsec -
			    t0.tv_nsec) / 1000));
	}
	free(live);
	batch_finish(st, reqs, n);
}

/* The monotonic clock plus usec. */
static struct timespec
deadline_in(long usec)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += usec * 1000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

/*
 * Right after a batch completes, its callers come back one by one with
 * their next request. Starting the next batch at the first arrival gives
 * batches of half the callers, alternating big and small; waiting a
 * little (at most STORE_GATHER_USEC, and only while fewer requests wait
 * than the last batch had) lets each batch take them all, the way MySQL's
 * binlog_group_commit_sync_delay does. A lone caller never waits: its
 * last batch had one request. st->lock is held.
 */
static void
gather(struct store *st, size_t want)
{
	struct timespec deadline = deadline_in(STORE_GATHER_USEC);

	while (st->nqueued < want && !st->is_stopping) {
		if (pthread_cond_timedwait(&st->queue_cond, &st->lock,
		    &deadline) == ETIMEDOUT)
			break;
	}
}

static void *
writer_main(void *arg)
{
	struct store *st = arg;
	struct store_req **reqs = NULL;
	size_t cap = 0, last = 0;
	bool is_rested = false;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		size_t n = 0;

		if (st->head == NULL) {
			if (st->is_stopping)
				break;
			if (!st->is_index_idle && !st->is_index_paused &&
			    !is_rested) {
				struct timespec until =
				    deadline_in(STORE_IDLE_USEC);

				/* Between the batches of a busy writer the
				 * queue is empty for a millisecond or two;
				 * indexing then would hold up the next
				 * batch. Only a writer with nothing to do
				 * for a while indexes. */
				is_rested = pthread_cond_timedwait(
				    &st->queue_cond, &st->lock, &until) ==
				    ETIMEDOUT && st->head == NULL;
				continue;
			}
			if (!st->is_index_idle && !st->is_index_paused) {
				bool is_more;

				pthread_mutex_unlock(&st->lock);
				is_more = st->be->idle(st);
				pthread_mutex_lock(&st->lock);
				if (!is_more) {
					st->is_index_idle = true;
					pthread_cond_broadcast(&st->idle_cond);
				}
				continue;
			}
			pthread_cond_wait(&st->queue_cond, &st->lock);
			continue;
		}
		if (st->nqueued < last && last > 1)
			gather(st, last < st->batch_max ? last : st->batch_max);
		if (cap < st->batch_max) {
			cap = st->batch_max;
			reqs = xrealloc(reqs, cap * sizeof(*reqs));
		}
		/* A check runs alone: it looks at every file. */
		while (st->head != NULL && n < st->batch_max) {
			struct store_req *req = st->head;

			if (req->kind == STORE_REQ_CHECK && n > 0)
				break;
			st->head = req->next;
			if (st->head == NULL)
				st->tail = NULL;
			st->nqueued--;
			req->next = NULL;
			reqs[n++] = req;
			if (req->kind == STORE_REQ_CHECK)
				break;
		}
		pthread_mutex_unlock(&st->lock);
		batch_run(st, reqs, n);
		last = n;
		is_rested = false;
		pthread_mutex_lock(&st->lock);
		st->batches++;
		st->is_index_idle = false;
	}
	st->is_index_idle = true;
	pthread_cond_broadcast(&st->idle_cond);
	pthread_mutex_unlock(&st->lock);
	free(reqs);
	return NULL;
}

int
store_writer_start(struct store *st, char *err, size_t errlen)
{
	int rc = pthread_create(&st->writer, NULL, writer_main, st);

	if (rc != 0) {
		snprintf(err, errlen, "cannot start the store writer: %s",
		    strerror(rc));
		return -1;
	}
	return 0;
}

void
store_writer_stop(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	st->is_stopping = true;
	pthread_cond_signal(&st->queue_cond);
	pthread_mutex_unlock(&st->lock);
	pthread_join(st->writer, NULL);
}

/* Appends req to the queue; st->lock is held. */
static void
enqueue(struct store *st, struct store_req *req)
{
	req->next = NULL;
	if (st->tail != NULL)
		st->tail->next = req;
	else
		st->head = req;
	st->tail = req;
	st->nqueued++;
	pthread_cond_signal(&st->queue_cond);
}

int
store_writer_submit(struct store *st, struct store_req *req)
{
	pthread_mutex_lock(&st->lock);
	if (st->is_stopping) {
		pthread_mutex_unlock(&st->lock);
		return -1;
	}
	enqueue(st, req);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int
store_writer_run(struct store *st, struct store_req *req)
{
	pthread_cond_t cond;

	pthread_cond_init(&cond, NULL);
	req->done_cond = &cond;
	pthread_mutex_lock(&st->lock);
	if (st->is_stopping) {
		pthread_mutex_unlock(&st->lock);
		pthread_cond_destroy(&cond);
		req->err = STORE_TEMP;
		return -1;
	}
	enqueue(st, req);
	while (!req->is_done)
		pthread_cond_wait(&cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
	pthread_cond_destroy(&cond);
	return 0;
}
