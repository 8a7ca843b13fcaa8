/*
 * Unit tests for the store's asynchronous side (embedded backend):
 * submit functions call back on the caller's event_base, later, exactly
 * once; watches fire on their base after a commit and never after
 * store_watch_free; store_close completes what was queued; and eight
 * threads delivering and flagging at once (half waiting, half on their own
 * event loops) leave every UID, MODSEQ and counter as a client expects.
 */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "store/store.h"

#define THREADS 8
#define PER_THREAD 40

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice;
	int64_t inbox;
	struct event_base *base;
	struct event *keepalive;	/* a loop always has a listener */
};

static void
on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("POSTERN_TEST_TMP");
	struct store_account a = {
		.address = "alice@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	struct store_mailbox mb;
	enum store_err err;
	char msg[256];

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(fx->dir, sizeof(fx->dir), "%s/async.XXXXXX", base);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st == NULL ||
	    store_domain_add(fx->st, "example.org", &err) < 0 ||
	    store_account_add(fx->st, &a, &err) < 0 ||
	    store_mailbox_get(fx->st, a.id, "INBOX", &mb, &err) < 0)
		return -1;
	fx->alice = a.id;
	fx->inbox = mb.id;
	store_mailbox_deinit(&mb);
	fx->base = event_base_new();
	if (fx->base == NULL)
		return -1;
	fx->keepalive = event_new(fx->base, -1, EV_PERSIST, on_keepalive,
	    NULL);
	event_add(fx->keepalive, &(struct timeval){ 3600, 0 });
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	store_close(&fx->st);
	event_free(fx->keepalive);
	event_base_free(fx->base);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static const char body[] = "Subject: async\r\n\r\nhello\r\n";

static struct store_delivery *
delivery(struct fx *fx, const char *mailbox)
{
	struct store_delivery *d;
	enum store_err err;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, body, sizeof(body) - 1, &err),
	    0);
	store_delivery_add(d, fx->alice, mailbox, 0, NULL, 0);
	return d;
}

static uint32_t
deliver_sync(struct fx *fx, const char *mailbox)
{
	struct store_delivery_result *res;
	uint32_t uid;
	size_t n;

	assert_int_equal(store_delivery_commit(delivery(fx, mailbox), &res,
	    &n), 0);
	assert_int_equal(res[0].err, STORE_OK);
	uid = res[0].uid;
	free(res);
	return uid;
}

/* ---- Submit ---------------------------------------------------------- */

struct done {
	int calls;
	enum store_err err;
	uint32_t uid;
	size_t n;
	struct store_change_result cres;
	struct event_base *base;
	bool is_loopexit;
};

static void
on_delivered(void *arg, const struct store_delivery_result *r, size_t n)
{
	struct done *d = arg;

	d->calls++;
	d->n = n;
	if (n > 0) {
		d->err = r[0].err;
		d->uid = r[0].uid;
	}
	if (d->is_loopexit)
		event_base_loopexit(d->base, NULL);
}

static void
on_changed(void *arg, const struct store_change_result *r)
{
	struct done *d = arg;

	d->calls++;
	d->err = r->err;
	d->cres.modseq = r->modseq;
	d->cres.ncopied = r->ncopied;
	if (d->is_loopexit)
		event_base_loopexit(d->base, NULL);
}

static void
test_store_delivery_submit_calls_back_later_on_loop(void **state)
{
	struct fx *fx = *state;
	struct done done = { .base = fx->base, .is_loopexit = true };
	struct store_msg *list;
	enum store_err err;
	size_t n;

	assert_int_equal(store_delivery_submit(delivery(fx, NULL), fx->base,
	    on_delivered, &done), 0);
	/* Never before the submit function returns, only from the loop. */
	usleep(100 * 1000);
	assert_int_equal(done.calls, 0);
	assert_int_equal(event_base_dispatch(fx->base), 0);
	assert_int_equal(done.calls, 1);
	assert_int_equal(done.n, 1);
	assert_int_equal(done.err, STORE_OK);
	assert_int_equal(done.uid, 1);
	/* Durable and visible by the time we hear of it. */
	assert_int_equal(store_msg_list(fx->st, fx->inbox, 1, 1, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	store_msg_list_free(&list, n);
	/* Exactly once. */
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(done.calls, 1);
}

static void
test_store_delivery_submit_failure_reported_per_recipient(void **state)
{
	struct fx *fx = *state;
	struct done done = { .base = fx->base, .is_loopexit = true };

	assert_int_equal(store_delivery_submit(delivery(fx, "No Such"),
	    fx->base, on_delivered, &done), 0);
	assert_int_equal(event_base_dispatch(fx->base), 0);
	assert_int_equal(done.calls, 1);
	assert_int_equal(done.err, STORE_NOT_FOUND);
}

static void
test_store_change_submit_copies_its_arguments(void **state)
{
	struct fx *fx = *state;
	struct done done = { .base = fx->base, .is_loopexit = true };
	struct store_change c = {
		.mailbox = fx->inbox, .nuids = 2, .kind = STORE_CHANGE_FLAGS,
		.mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN,
	};
	struct store_msg *list;
	enum store_err err;
	uint32_t *uids = malloc(2 * sizeof(*uids));
	char *kw = strdup("$Done");
	size_t n;

	uids[0] = deliver_sync(fx, NULL);
	uids[1] = deliver_sync(fx, NULL);
	c.uids = uids;
	c.keywords = kw;
	assert_int_equal(store_change_submit(fx->st, &c, fx->base, on_changed,
	    &done), 0);
	/* The caller's memory may go at once. */
	memset(uids, 0, 2 * sizeof(*uids));
	free(uids);
	free(kw);
	assert_int_equal(event_base_dispatch(fx->base), 0);
	assert_int_equal(done.calls, 1);
	assert_int_equal(done.err, STORE_OK);
	assert_int_equal(store_msg_list(fx->st, fx->inbox, 1, 2, &list, &n,
	    &err), 0);
	assert_int_equal(list[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(list[1].keywords, "$Done");
	assert_int_equal(list[1].modseq, done.cres.modseq);
	store_msg_list_free(&list, n);
}

static void
test_store_change_submit_invalid_still_calls_back_later(void **state)
{
	struct fx *fx = *state;
	struct done done = { .base = fx->base, .is_loopexit = true };
	uint32_t zero = 0;
	struct store_change c = {
		.mailbox = fx->inbox, .uids = &zero, .nuids = 1,
		.kind = STORE_CHANGE_EXPUNGE,
	};

	assert_int_equal(store_change_submit(fx->st, &c, fx->base, on_changed,
	    &done), 0);
	assert_int_equal(done.calls, 0);
	assert_int_equal(event_base_dispatch(fx->base), 0);
	assert_int_equal(done.calls, 1);
	assert_int_equal(done.err, STORE_INVALID);
}

static void
test_store_close_completes_queued_submits(void **state)
{
	struct fx *fx = *state;
	struct done done = { .base = fx->base };
	struct store_mailbox mb;
	enum store_err err;
	char msg[256];

	for (int i = 0; i < 20; i++)
		assert_int_equal(store_delivery_submit(delivery(fx, NULL),
		    fx->base, on_delivered, &done), 0);
	store_close(&fx->st);
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(done.calls, 20);
	assert_int_equal(done.err, STORE_OK);
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	assert_non_null(fx->st);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(mb.messages, 20);
	assert_int_equal(mb.uidnext, 21);
	store_mailbox_deinit(&mb);
}

/* ---- Watches --------------------------------------------------------- */

struct seen {
	int calls;
	size_t nchanged;
	uint64_t modseq;	/* what the session last saw */
	struct store *st;
	int64_t mailbox;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* What a session does when told: ask what changed since last time. */
static void
on_watch(void *arg)
{
	struct seen *s = arg;
	struct store_msg *changed;
	uint32_t *vanished;
	size_t nchanged, nvanished;
	enum store_err err;

	assert_int_equal(store_msg_changes(s->st, s->mailbox, s->modseq,
	    &changed, &nchanged, &vanished, &nvanished, NULL, &err), 0);
	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->nchanged += nchanged + nvanished;
	for (size_t i = 0; i < nchanged; i++) {
		if (changed[i].modseq > s->modseq)
			s->modseq = changed[i].modseq;
	}
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
}

static void
test_store_watch_fires_after_commit_for_its_mailbox_only(void **state)
{
	struct fx *fx = *state;
	struct seen s = { .st = fx->st, .mailbox = fx->inbox };
	struct store_watch *w, *other;
	struct store_mailbox sent;
	enum store_err err;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "Sent", &sent,
	    &err), 0);
	w = store_watch_new(fx->st, fx->inbox, fx->base, on_watch, &s);
	other = store_watch_new(fx->st, sent.id, fx->base, on_watch, &s);
	deliver_sync(fx, NULL);
	assert_int_equal(s.calls, 0);
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.nchanged, 1);
	/* Two commits before the loop runs: one call tells of both. */
	deliver_sync(fx, NULL);
	deliver_sync(fx, NULL);
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.nchanged, 3);
	/* A flag change and an expunge are changes too. */
	{
		uint32_t uids[] = { 1, 2 };
		struct store_change c = {
			.mailbox = fx->inbox, .uids = uids, .nuids = 1,
			.kind = STORE_CHANGE_FLAGS, .mode = STORE_FLAGS_ADD,
			.flags = STORE_FLAG_SEEN,
		};
		struct store_change_result r;

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK),
		    0);
		assert_int_equal(s.calls, 3);
		c.kind = STORE_CHANGE_EXPUNGE;
		c.uids = uids + 1;
		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK),
		    0);
		assert_int_equal(s.calls, 4);
	}
	/* A change that changes nothing tells nobody. */
	{
		uint32_t missing = 99;
		struct store_change c = {
			.mailbox = fx->inbox, .uids = &missing, .nuids = 1,
			.kind = STORE_CHANGE_FLAGS, .mode = STORE_FLAGS_ADD,
			.flags = STORE_FLAG_SEEN,
		};
		struct store_change_result r;

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK),
		    0);
		assert_int_equal(s.calls, 4);
	}
	store_watch_free(&w);
	store_watch_free(&other);
	assert_null(w);
	store_mailbox_deinit(&sent);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
}

static void
test_store_watch_free_cancels_a_scheduled_callback(void **state)
{
	struct fx *fx = *state;
	struct seen s = { .st = fx->st, .mailbox = fx->inbox };
	struct store_watch *w;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	w = store_watch_new(fx->st, fx->inbox, fx->base, on_watch, &s);
	deliver_sync(fx, NULL);
	/* The callback is on the loop's queue now; freeing wins. */
	store_watch_free(&w);
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	deliver_sync(fx, NULL);
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	store_watch_free(&w);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
}

/* ---- Account watches (NOTIFY) ---------------------------------------- */

struct account_seen {
	struct store_account_watch *w;
	int calls;
	struct store_event *events;
	size_t n;
	bool is_ok;
};

static void
on_account_watch(void *arg)
{
	struct account_seen *a = arg;

	a->calls++;
	store_events_free(&a->events, a->n);
	a->is_ok = store_account_watch_take(a->w, &a->events, &a->n);
}

static void
assert_event(const struct store_event *e, unsigned kind, int64_t mailbox,
    const char *name, const char *old_name)
{
	assert_int_equal(e->kind, kind);
	assert_int_equal(e->mailbox, mailbox);
	if (name == NULL)
		assert_null(e->name);
	else
		assert_string_equal(e->name, name);
	if (old_name == NULL)
		assert_null(e->old_name);
	else
		assert_string_equal(e->old_name, old_name);
}

static void
test_store_account_watch_tells_what_each_commit_did(void **state)
{
	struct fx *fx = *state;
	struct account_seen a = { 0 }, b = { 0 };
	struct store_account bob = {
		.address = "bob@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	enum store_err err;
	uint32_t uid;

	assert_int_equal(store_account_add(fx->st, &bob, &err), 0);
	a.w = store_account_watch_new(fx->st, fx->alice, fx->base,
	    on_account_watch, &a);
	b.w = store_account_watch_new(fx->st, bob.id, fx->base,
	    on_account_watch, &b);
	/* Two deliveries before the loop runs: one call, one merged
	 * entry for the mailbox. */
	uid = deliver_sync(fx, NULL);
	deliver_sync(fx, NULL);
	assert_int_equal(a.calls, 0);
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(a.calls, 1);
	assert_true(a.is_ok);
	assert_int_equal(a.n, 1);
	assert_event(&a.events[0], STORE_EVENT_NEW, fx->inbox, NULL, NULL);
	/* Names, in commit order; a flag change merges with nothing
	 * else; a failed request tells nothing. */
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Work",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Work/Sub",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Sent",
	    STORE_SPECIAL_NONE, &err), -1);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Work",
	    "Play", &err), 0);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "Play",
	    true, &err), 0);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "Play/Sub",
	    &err), 0);
	{
		struct store_change c = {
			.mailbox = fx->inbox, .uids = &uid, .nuids = 1,
			.kind = STORE_CHANGE_FLAGS, .mode = STORE_FLAGS_ADD,
			.flags = STORE_FLAG_SEEN,
		};
		struct store_change_result r;

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		c.kind = STORE_CHANGE_EXPUNGE;
		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
	}
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(a.calls, 2);
	assert_true(a.is_ok);
	assert_int_equal(a.n, 7);
	assert_event(&a.events[0], STORE_EVENT_CREATE, 0, "Work", NULL);
	assert_event(&a.events[1], STORE_EVENT_CREATE, 0, "Work/Sub", NULL);
	assert_event(&a.events[2], STORE_EVENT_RENAME, 0, "Play", "Work");
	assert_event(&a.events[3], STORE_EVENT_RENAME, 0, "Play/Sub",
	    "Work/Sub");
	assert_event(&a.events[4], STORE_EVENT_SUBSCRIBE, 0, "Play", NULL);
	assert_event(&a.events[5], STORE_EVENT_DELETE, 0, "Play/Sub", NULL);
	assert_event(&a.events[6], STORE_EVENT_FLAGS | STORE_EVENT_EXPUNGE,
	    fx->inbox, NULL, NULL);
	/* Bob's watch heard nothing of Alice. */
	assert_int_equal(b.calls, 0);
	store_account_watch_free(&a.w);
	store_account_watch_free(&b.w);
	assert_null(a.w);
	store_events_free(&a.events, a.n);
}

static void
test_store_account_watch_overflows_and_recovers(void **state)
{
	struct fx *fx = *state;
	struct account_seen a = { 0 };
	enum store_err err;

	a.w = store_account_watch_new(fx->st, fx->alice, fx->base,
	    on_account_watch, &a);
	/* Subscriptions never merge: one entry each. */
	for (int i = 0; i <= STORE_ACCOUNT_WATCH_EVENTS_MAX / 2; i++) {
		assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice,
		    "Sent", true, &err), 0);
		assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice,
		    "Sent", false, &err), 0);
	}
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(a.calls, 1);
	assert_false(a.is_ok);
	assert_int_equal(a.n, 0);
	assert_null(a.events);
	/* The next commit starts afresh. */
	deliver_sync(fx, NULL);
	assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(a.calls, 2);
	assert_true(a.is_ok);
	assert_int_equal(a.n, 1);
	store_account_watch_free(&a.w);
	store_events_free(&a.events, a.n);
}

static void
test_store_account_watch_free_cancels_a_scheduled_callback(void **state)
{
	struct fx *fx = *state;
	struct account_seen a = { 0 };

	a.w = store_account_watch_new(fx->st, fx->alice, fx->base,
	    on_account_watch, &a);
	deliver_sync(fx, NULL);
	/* Scheduled with events pending; freeing wins and frees them. */
	store_account_watch_free(&a.w);
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(a.calls, 0);
	store_account_watch_free(&a.w);
}

struct loop_thread {
	struct event_base *base;
	struct event *keepalive;
	pthread_t thread;
};

static void *
loop_main(void *arg)
{
	struct loop_thread *t = arg;

	event_base_dispatch(t->base);
	return NULL;
}

static void
test_store_watch_fires_on_another_threads_loop(void **state)
{
	struct fx *fx = *state;
	struct seen s = { .st = fx->st, .mailbox = fx->inbox };
	struct loop_thread t;
	struct timeval forever = { 3600, 0 };
	struct store_watch *w;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	t.base = event_base_new();
	t.keepalive = event_new(t.base, -1, EV_PERSIST, on_keepalive, NULL);
	event_add(t.keepalive, &forever);
	w = store_watch_new(fx->st, fx->inbox, t.base, on_watch, &s);
	pthread_create(&t.thread, NULL, loop_main, &t);
	for (int i = 0; i < 5; i++) {
		deliver_sync(fx, NULL);
		pthread_mutex_lock(&s.lock);
		while (s.nchanged < (size_t)i + 1)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
	}
	assert_int_equal(s.nchanged, 5);
	event_base_loopexit(t.base, NULL);
	pthread_join(t.thread, NULL);
	store_watch_free(&w);
	event_free(t.keepalive);
	event_base_free(t.base);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
}

/* ---- Threads --------------------------------------------------------- */

struct worker {
	struct fx *fx;
	int index;
	bool is_async;
	int64_t own;		/* the thread's own mailbox */
	uint32_t inbox_uids[PER_THREAD];
	uint32_t own_uids[PER_THREAD];
	uint64_t modseqs[PER_THREAD];
	/* async plumbing */
	struct event_base *base;
	struct event *keepalive;
	struct done done;
};

static void
on_worker_delivered(void *arg, const struct store_delivery_result *r,
    size_t n)
{
	struct worker *w = arg;

	assert_int_equal(n, 2);
	assert_int_equal(r[0].err, STORE_OK);
	assert_int_equal(r[1].err, STORE_OK);
	w->done.uid = r[0].uid;
	w->done.cres.ncopied = r[1].uid;
	w->done.calls++;
	event_base_loopexit(w->base, NULL);
}

static void
on_worker_changed(void *arg, const struct store_change_result *r)
{
	struct worker *w = arg;

	w->done.err = r->err;
	w->done.cres.modseq = r->modseq;
	w->done.calls++;
	event_base_loopexit(w->base, NULL);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct fx *fx = w->fx;
	char name[16], text[128];

	snprintf(name, sizeof(name), "T%d", w->index);
	for (int i = 0; i < PER_THREAD; i++) {
		struct store_delivery *d;
		struct store_change c;
		struct store_change_result r;
		enum store_err err;
		int len = snprintf(text, sizeof(text), "Subject: t%d m%d\r\n"
		    "\r\nthread %d message %d\r\n", w->index, i, w->index, i);

		d = store_delivery_new(fx->st, &err);
		assert_non_null(d);
		assert_int_equal(store_delivery_write(d, text, (size_t)len,
		    &err), 0);
		store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
		store_delivery_add(d, fx->alice, name, 0, NULL, 0);
		if (w->is_async) {
			w->done.calls = 0;
			assert_int_equal(store_delivery_submit(d, w->base,
			    on_worker_delivered, w), 0);
			event_base_dispatch(w->base);
			assert_int_equal(w->done.calls, 1);
			w->inbox_uids[i] = w->done.uid;
			w->own_uids[i] = (uint32_t)w->done.cres.ncopied;
		} else {
			struct store_delivery_result *res;
			size_t n;

			assert_int_equal(store_delivery_commit(d, &res, &n), 0);
			assert_int_equal(res[0].err, STORE_OK);
			assert_int_equal(res[1].err, STORE_OK);
			w->inbox_uids[i] = res[0].uid;
			w->own_uids[i] = res[1].uid;
			free(res);
		}
		/* Flag it in INBOX, where every thread works at once. */
		c = (struct store_change){
			.mailbox = fx->inbox, .uids = &w->inbox_uids[i],
			.nuids = 1, .kind = STORE_CHANGE_FLAGS,
			.mode = STORE_FLAGS_ADD,
			.flags = i % 2 ? STORE_FLAG_SEEN : STORE_FLAG_FLAGGED,
			.keywords = name,
		};
		if (w->is_async) {
			w->done.calls = 0;
			assert_int_equal(store_change_submit(fx->st, &c,
			    w->base, on_worker_changed, w), 0);
			event_base_dispatch(w->base);
			assert_int_equal(w->done.calls, 1);
			assert_int_equal(w->done.err, STORE_OK);
			w->modseqs[i] = w->done.cres.modseq;
		} else {
			assert_int_equal(store_change_commit(fx->st, &c, &r),
			    0);
			w->modseqs[i] = r.modseq;
			store_change_result_deinit(&r);
		}
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_store_eight_threads_delivering_and_flagging(void **state)
{
	struct fx *fx = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	pthread_t threads[THREADS];
	uint32_t all[THREADS * PER_THREAD];
	uint64_t modseqs[THREADS * PER_THREAD];
	struct store_msg *list;
	struct store_mailbox mb;
	enum store_err err;
	char name[16];
	size_t n;

	for (int t = 0; t < THREADS; t++) {
		snprintf(name, sizeof(name), "T%d", t);
		assert_int_equal(store_mailbox_create(fx->st, fx->alice, name,
		    STORE_SPECIAL_NONE, &err), 0);
		assert_int_equal(store_mailbox_get(fx->st, fx->alice, name,
		    &mb, &err), 0);
		w[t].own = mb.id;
		store_mailbox_deinit(&mb);
		w[t].fx = fx;
		w[t].index = t;
		w[t].is_async = t % 2 == 1;
		if (w[t].is_async) {
			w[t].base = event_base_new();
			w[t].keepalive = event_new(w[t].base, -1, EV_PERSIST,
			    on_keepalive, NULL);
			event_add(w[t].keepalive, &(struct timeval){ 3600, 0 });
		}
	}
	for (int t = 0; t < THREADS; t++)
		pthread_create(&threads[t], NULL, worker_main, &w[t]);
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);

	/* INBOX: UIDs 1..320, each handed out once. */
	for (int t = 0; t < THREADS; t++) {
		memcpy(all + t * PER_THREAD, w[t].inbox_uids,
		    sizeof(w[t].inbox_uids));
		memcpy(modseqs + t * PER_THREAD, w[t].modseqs,
		    sizeof(w[t].modseqs));
		/* In its own mailbox a thread's UIDs count up from 1. */
		for (int i = 0; i < PER_THREAD; i++)
			assert_int_equal(w[t].own_uids[i], (uint32_t)i + 1);
		/* Each thread saw its flag changes' MODSEQs grow. */
		for (int i = 1; i < PER_THREAD; i++)
			assert_true(w[t].modseqs[i] > w[t].modseqs[i - 1]);
	}
	qsort(all, THREADS * PER_THREAD, sizeof(*all), cmp_u32);
	for (int i = 0; i < THREADS * PER_THREAD; i++)
		assert_int_equal(all[i], (uint32_t)i + 1);
	/* Every flag change got a MODSEQ of its own (RFC 7162 §3.1). */
	qsort(modseqs, THREADS * PER_THREAD, sizeof(*modseqs), cmp_u64);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		assert_true(modseqs[i] > modseqs[i - 1]);

	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(mb.messages, THREADS * PER_THREAD);
	assert_int_equal(mb.unseen, THREADS * PER_THREAD / 2);
	assert_int_equal(mb.uidnext, THREADS * PER_THREAD + 1);
	assert_int_equal(mb.highestmodseq, modseqs[THREADS * PER_THREAD - 1]);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_msg_list(fx->st, fx->inbox, 1, UINT32_MAX,
	    &list, &n, &err), 0);
	assert_int_equal(n, THREADS * PER_THREAD);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(list[i].keywords);
		assert_int_equal(list[i].keywords[0], 'T');
		assert_true(list[i].flags == STORE_FLAG_SEEN ||
		    list[i].flags == STORE_FLAG_FLAGGED);
	}
	store_msg_list_free(&list, n);
	for (int t = 0; t < THREADS; t++) {
		snprintf(name, sizeof(name), "T%d", t);
		assert_int_equal(store_mailbox_get(fx->st, fx->alice, name,
		    &mb, &err), 0);
		assert_int_equal(mb.messages, PER_THREAD);
		assert_int_equal(mb.unseen, PER_THREAD);
		store_mailbox_deinit(&mb);
		if (w[t].base != NULL) {
			event_free(w[t].keepalive);
			event_base_free(w[t].base);
		}
	}
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_store_delivery_submit_calls_back_later_on_loop),
		T(test_store_delivery_submit_failure_reported_per_recipient),
		T(test_store_change_submit_copies_its_arguments),
		T(test_store_change_submit_invalid_still_calls_back_later),
		T(test_store_close_completes_queued_submits),
		T(test_store_watch_fires_after_commit_for_its_mailbox_only),
		T(test_store_watch_free_cancels_a_scheduled_callback),
		T(test_store_watch_fires_on_another_threads_loop),
		T(test_store_account_watch_tells_what_each_commit_did),
		T(test_store_account_watch_overflows_and_recovers),
		T(test_store_account_watch_free_cancels_a_scheduled_callback),
		T(test_store_eight_threads_delivering_and_flagging),
#undef T
	};

	/* The store schedules callbacks from its writer thread. */
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
