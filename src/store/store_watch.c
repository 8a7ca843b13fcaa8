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

/* ---- Account watches ------------------------------------------------- */

/*
 * An account watch has the same reference counting and cancelled flag as
 * a mailbox watch. Its pending events and is_pending live under
 * st->watch_lock: the writer appends, the session takes. Only a watch
 * with events pending holds memory beyond the struct, so an idle session
 * costs one struct whatever the number of its mailboxes.
 */
struct store_account_watch {
	struct store *st;
	int64_t account;
	struct event_base *base;
	void (*cb)(void *arg);
	void *arg;
	atomic_int refs;
	bool is_cancelled;	/* base's thread only */
	/* Under st->watch_lock. */
	bool is_pending;	/* a callback is scheduled, not yet run */
	bool is_overflow;	/* events were dropped since the last take */
	struct store_event *events;
	size_t nevents, cap;
	struct store_account_watch *next;
};

void
store_events_free(struct store_event **events, size_t n)
{
	if (*events == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*events)[i].name);
		free((*events)[i].old_name);
	}
	free(*events);
	*events = NULL;
}

static void
account_watch_unref(struct store_account_watch *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		store_events_free(&w->events, w->nevents);
		free(w);
	}
}

static size_t
account_bucket_of(int64_t account)
{
	return (size_t)((uint64_t)account % STORE_WATCH_BUCKETS);
}

struct store_account_watch *
store_account_watch_new(struct store *st, int64_t account,
    struct event_base *base, void (*cb)(void *arg), void *arg)
{
	struct store_account_watch *w = xcalloc(1, sizeof(*w));
	size_t b = account_bucket_of(account);

	w->st = st;
	w->account = account;
	w->base = base;
	w->cb = cb;
	w->arg = arg;
	atomic_init(&w->refs, 1);
	pthread_mutex_lock(&st->watch_lock);
	w->next = st->account_watches[b];
	st->account_watches[b] = w;
	pthread_mutex_unlock(&st->watch_lock);
	return w;
}

void
store_account_watch_free(struct store_account_watch **wp)
{
	struct store_account_watch *w = *wp, **pp;
	struct store *st;

	if (w == NULL)
		return;
	*wp = NULL;
	st = w->st;
	pthread_mutex_lock(&st->watch_lock);
	for (pp = &st->account_watches[account_bucket_of(w->account)];
	    *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->watch_lock);
	w->is_cancelled = true;
	account_watch_unref(w);
}

bool
store_account_watch_take(struct store_account_watch *w,
    struct store_event **events_out, size_t *n_out)
{
	bool is_overflow;

	pthread_mutex_lock(&w->st->watch_lock);
	*events_out = w->events;
	*n_out = w->nevents;
	is_overflow = w->is_overflow;
	w->events = NULL;
	w->nevents = w->cap = 0;
	w->is_overflow = false;
	pthread_mutex_unlock(&w->st->watch_lock);
	return !is_overflow;
}

/* On the watch's base thread. */
static void
on_account_fire(evutil_socket_t fd, short what, void *arg)
{
	struct store_account_watch *w = arg;

	(void)fd;
	(void)what;
	/* Cleared before the callback takes the events, so that a commit
	 * after this point schedules another call. */
	pthread_mutex_lock(&w->st->watch_lock);
	w->is_pending = false;
	pthread_mutex_unlock(&w->st->watch_lock);
	if (!w->is_cancelled)
		w->cb(w->arg);
	account_watch_unref(w);
}

/* Under st->watch_lock. */
static void
account_watch_add(struct store_account_watch *w, const struct store_event *e)
{
	struct store_event *d;

	if (w->is_overflow)
		return;
	if (e->kind & STORE_EVENT_MESSAGE) {
		for (size_t i = 0; i < w->nevents; i++) {
			if ((w->events[i].kind & STORE_EVENT_MESSAGE) &&
			    w->events[i].mailbox == e->mailbox) {
				w->events[i].kind |= e->kind;
				if (w->events[i].origin != e->origin)
					w->events[i].origin = 0;
				return;
			}
		}
	}
	if (w->nevents == STORE_ACCOUNT_WATCH_EVENTS_MAX) {
		/* RFC 5465 §5.8: the session says NOTIFICATIONOVERFLOW. */
		store_events_free(&w->events, w->nevents);
		w->nevents = w->cap = 0;
		w->is_overflow = true;
		return;
	}
	if (w->nevents == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 8;
		w->events = xrealloc(w->events, w->cap * sizeof(*w->events));
	}
	d = &w->events[w->nevents++];
	d->kind = e->kind;
	d->origin = e->origin;
	d->mailbox = e->mailbox;
	d->name = e->name != NULL ? xstrdup(e->name) : NULL;
	d->old_name = e->old_name != NULL ? xstrdup(e->old_name) : NULL;
}

void
store_account_watch_notify(struct store *st, struct store_req **reqs,
    size_t n)
{
	pthread_mutex_lock(&st->watch_lock);
	for (size_t i = 0; i < n; i++) {
		const struct store_req *req = reqs[i];

		if (req->err != STORE_OK)
			continue;
		for (size_t j = 0; j < req->nevents; j++) {
			const struct store_req_event *e = &req->events[j];
			struct store_account_watch *w;

			for (w = st->account_watches[account_bucket_of(
			    e->account)]; w != NULL; w = w->next) {
				if (w->account != e->account)
					continue;
				account_watch_add(w, &e->ev);
				if (w->is_pending)
					continue;
				w->is_pending = true;
				atomic_fetch_add(&w->refs, 1);
				if (event_base_once(w->base, -1, EV_TIMEOUT,
				    on_account_fire, w, NULL) < 0) {
					log_error(NULL, "store.watch_notify "
					    "account=%lld error=\""
					    "event_base_once failed\"",
					    (long long)w->account);
					w->is_pending = false;
					account_watch_unref(w);
				}
			}
		}
	}
	pthread_mutex_unlock(&st->watch_lock);
}
