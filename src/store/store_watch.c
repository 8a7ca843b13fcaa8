/*
 * store_watch: in-process change notifications (DESIGN.md, notifier). A
 * watch is a mailbox, an event_base and a callback. After each commit the
 * writer schedules the callback of every watch on a touched mailbox with
 * event_base_once(); the callback then runs on the watch's base thread.
 *
 * Freeing a watch races with a callback the writer has already scheduled
 * but the loop has not run yet. So a watch is reference-counted (one
 * reference for the registration, one per scheduled callback) and has a
 * cancelled flag that only its base's thread writes (store_watch_free) and
 * reads (the scheduled callback): once store_watch_free() returns on that
 * thread, a late callback sees the flag, drops its reference and does
 * nothing. At most one callback per watch is pending at a time; the
 * session asks store_msg_changes() what happened, so merging is safe.
 */
#include "store/store_int.h"

#include <stdlib.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"

struct store_watch {
	struct store *st;
	int64_t mailbox;
	struct event_base *base;
	void (*cb)(void *arg);
	void *arg;
	atomic_int refs;
	atomic_bool is_pending;	/* a callback is scheduled, not yet run */
	bool is_cancelled;	/* base's thread only */
	struct store_watch *next;	/* chain, under st->watch_lock */
};

static size_t
bucket_of(int64_t mailbox)
{
	return (size_t)((uint64_t)mailbox % STORE_WATCH_BUCKETS);
}

/* Drops one reference; the last one frees. */
static void
watch_unref(struct store_watch *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1)
		free(w);
}

struct store_watch *
store_watch_new(struct store *st, int64_t mailbox, struct event_base *base,
    void (*cb)(void *arg), void *arg)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	size_t b = bucket_of(mailbox);

	w->st = st;
	w->mailbox = mailbox;
	w->base = base;
	w->cb = cb;
	w->arg = arg;
	atomic_init(&w->refs, 1);
	atomic_init(&w->is_pending, false);
	pthread_mutex_lock(&st->watch_lock);
	w->next = st->watches[b];
	st->watches[b] = w;
	pthread_mutex_unlock(&st->watch_lock);
	return w;
}

void
store_watch_free(struct store_watch **wp)
{
	struct store_watch *w = *wp, **pp;
	struct store *st;

	if (w == NULL)
		return;
	*wp = NULL;
	st = w->st;
	pthread_mutex_lock(&st->watch_lock);
	for (pp = &st->watches[bucket_of(w->mailbox)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->watch_lock);
	w->is_cancelled = true;
	/* Takes the registration's reference. */
	watch_unref(w);
}

/* On the watch's base thread. */
static void
on_fire(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch *w = arg;

	(void)fd;
	(void)what;
	/* Cleared before the callback reads the store, so that a commit
	 * after this point schedules another call. */
	atomic_store(&w->is_pending, false);
	if (!w->is_cancelled)
		w->cb(w->arg);
	/* Takes the reference store_watch_notify gave this callback. */
	watch_unref(w);
}

void
store_watch_notify(struct store *st, const int64_t *mailboxes, size_t n)
{
	pthread_mutex_lock(&st->watch_lock);
	for (size_t i = 0; i < n; i++) {
		struct store_watch *w;

		for (w = st->watches[bucket_of(mailboxes[i])]; w != NULL;
		    w = w->next) {
			if (w->mailbox != mailboxes[i] ||
			    atomic_exchange(&w->is_pending, true))
				continue;
			atomic_fetch_add(&w->refs, 1);
			if (event_base_once(w->base, -1, EV_TIMEOUT, on_fire, w,
			    NULL) < 0) {
				log_error(NULL, "store.watch_notify "
				    "mailbox=%lld error=\"event_base_once "
				    "failed\"", (long long)w->mailbox);
				atomic_store(&w->is_pending, false);
				watch_unref(w);
			}
		}
	}
	pthread_mutex_unlock(&st->watch_lock);
}
