/*
 * Unit tests for store_check and for the store when the world fails
 * (embedded backend): a clean store has no findings; a missing body, an
 * orphan file and damaged counters are found and repaired; what a crash
 * leaves (temporary files, renamed but uncommitted bodies, unlinks not
 * done) is cleaned at open; a rename that fails fails its own request
 * only; a full disk (a 1 MiB tmpfs, when we may mount one) fails with
 * STORE_TEMP and damages nothing stored before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include "store/store.h"

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice;
	int64_t inbox;
	char lines[32][256];	/* what store_check reported */
	int nlines;
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
open_store(struct fx *fx)
{
	char err[256];

	fx->st = store_open(fx->dir, err, sizeof(err));
	if (fx->st == NULL)
		fail_msg("store_open: %s", err);
}

static int
setup_in(struct fx *fx, const char *dir)
{
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

	snprintf(fx->dir, sizeof(fx->dir), "%s", dir);
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st == NULL ||
	    store_domain_add(fx->st, "example.org", &err) < 0 ||
	    store_account_add(fx->st, &a, &err) < 0 ||
	    store_mailbox_get(fx->st, a.id, "INBOX", &mb, &err) < 0)
		return -1;
	fx->alice = a.id;
	fx->inbox = mb.id;
	store_mailbox_deinit(&mb);
	return 0;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("POSTERN_TEST_TMP");
	char dir[512];

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/check.XXXXXX", base);
	if (mkdtemp(dir) == NULL || setup_in(fx, dir) < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	store_close(&fx->st);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void
on_report(void *arg, const char *line)
{
	struct fx *fx = arg;

	if (fx->nlines < 32)
		snprintf(fx->lines[fx->nlines++], sizeof(fx->lines[0]), "%s",
		    line);
}

static int
check(struct fx *fx, bool is_repair)
{
	fx->nlines = 0;
	return store_check(fx->st, is_repair, on_report, fx);
}

static bool
has_line(struct fx *fx, const char *part)
{
	for (int i = 0; i < fx->nlines; i++) {
		if (strstr(fx->lines[i], part) != NULL)
			return true;
	}
	return false;
}

static struct store_delivery_result
deliver(struct fx *fx, const char *text, size_t len)
{
	struct store_delivery_result *res, r;
	struct store_delivery *d;
	enum store_err err;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	if (d == NULL) {
		r.err = err;
		return r;
	}
	if (store_delivery_write(d, text, len, &err) < 0) {
		store_delivery_abort(&d);
		r.err = err;
		return r;
	}
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	r = res[0];
	free(res);
	return r;
}

static const char text[] = "Subject: check\r\n\r\nbody\r\n";

static uint32_t
deliver_ok(struct fx *fx)
{
	struct store_delivery_result r = deliver(fx, text, sizeof(text) - 1);

	assert_int_equal(r.err, STORE_OK);
	return r.uid;
}

static int64_t
blob_of(struct fx *fx, uint32_t uid)
{
	struct store_msg *list;
	enum store_err err;
	int64_t blob;
	size_t n;

	assert_int_equal(store_msg_list(fx->st, fx->inbox, uid, uid, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	blob = list[0].blob;
	store_msg_list_free(&list, n);
	return blob;
}

static void
blob_path(struct fx *fx, int64_t blob, char *buf, size_t len)
{
	snprintf(buf, len, "%s/blobs/%02x/%lld", fx->dir,
	    (unsigned)((blob >> 8) & 0xff), (long long)blob);
}

/* Runs sql on the closed store's database. */
static void
sql(struct fx *fx, const char *statement)
{
	char path[600], *msg = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, statement, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", statement, msg);
	sqlite3_close(db);
}

static void
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
}

/* ---- store_check ----------------------------------------------------- */

static void
test_store_check_clean_store_has_no_findings(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(check(fx, false), 0);
	deliver_ok(fx);
	deliver_ok(fx);
	assert_int_equal(check(fx, false), 0);
	assert_int_equal(fx->nlines, 0);
}

static void
test_store_check_missing_body_found_and_expunged(void **state)
{
	struct fx *fx = *state;
	struct store_msg *changed;
	struct store_mailbox mb;
	uint32_t *vanished, keep, lost;
	size_t nchanged, nvanished;
	enum store_err err;
	uint64_t modseq;
	char path[600];

	keep = deliver_ok(fx);
	lost = deliver_ok(fx);
	blob_path(fx, blob_of(fx, lost), path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(check(fx, false), 1);
	assert_true(has_line(fx, "missing"));
	/* A check alone changes nothing. */
	assert_int_equal(check(fx, false), 1);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	modseq = mb.highestmodseq;
	store_mailbox_deinit(&mb);
	assert_int_equal(check(fx, true), 1);
	assert_int_equal(check(fx, false), 0);
	/* Clients learn the message vanished. */
	assert_int_equal(store_msg_changes(fx->st, fx->inbox, modseq, &changed,
	    &nchanged, &vanished, &nvanished, NULL, &err), 0);
	assert_int_equal(nvanished, 1);
	assert_int_equal(vanished[0], lost);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(mb.messages, 1);
	assert_true(mb.highestmodseq > modseq);
	store_mailbox_deinit(&mb);
	blob_path(fx, blob_of(fx, keep), path, sizeof(path));
	assert_int_equal(access(path, R_OK), 0);
}

static void
test_store_check_orphan_file_found_and_removed(void **state)
{
	struct fx *fx = *state;
	char path[600];

	deliver_ok(fx);
	snprintf(path, sizeof(path), "%s/blobs/00/77", fx->dir);
	touch(path);
	snprintf(path, sizeof(path), "%s/blobs/00/stray.txt", fx->dir);
	touch(path);
	assert_int_equal(check(fx, false), 2);
	assert_true(has_line(fx, "orphan"));
	assert_true(has_line(fx, "not a body file"));
	assert_int_equal(check(fx, true), 2);
	snprintf(path, sizeof(path), "%s/blobs/00/77", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* What we do not understand we do not delete. */
	snprintf(path, sizeof(path), "%s/blobs/00/stray.txt", fx->dir);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	assert_int_equal(check(fx, false), 0);
}

static void
test_store_check_damaged_counters_repaired(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	uint64_t bytes, msgs;
	enum store_err err;

	deliver_ok(fx);
	deliver_ok(fx);
	deliver_ok(fx);
	store_close(&fx->st);
	sql(fx, "UPDATE mailboxes SET messages = 99, unseen = 7 "
	    "WHERE name = 'INBOX';"
	    "UPDATE accounts SET used_bytes = 5;"
	    "UPDATE blobs SET refcount = 4 WHERE id = 2;"
	    "UPDATE mailboxes SET uidnext = 2, highestmodseq = 1 "
	    "WHERE name = 'INBOX';");
	open_store(fx);
	assert_int_equal(check(fx, false), 4);
	assert_int_equal(check(fx, true), 4);
	assert_int_equal(check(fx, false), 0);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(mb.messages, 3);
	assert_int_equal(mb.unseen, 3);
	assert_int_equal(mb.uidnext, 4);
	assert_true(mb.highestmodseq >= 4);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_account_usage(fx->st, fx->alice, &bytes, &msgs,
	    &err), 0);
	assert_int_equal(bytes, 3 * (sizeof(text) - 1));
	assert_int_equal(msgs, 3);
	/* UIDs go on from where they were. */
	assert_int_equal(deliver_ok(fx), 4);
}

/* ---- Recovery at open ------------------------------------------------ */

static void
test_store_open_cleans_what_a_crash_left(void **state)
{
	struct fx *fx = *state;
	char path[600];

	deliver_ok(fx);
	deliver_ok(fx);
	store_close(&fx->st);
	/* A body renamed into place whose batch never committed (ids from
	 * blob_next on), a temporary file of a dead process, and a blob
	 * whose last message went but whose file stayed. */
	blob_path(fx, 3, path, sizeof(path));
	touch(path);
	blob_path(fx, 4, path, sizeof(path));
	touch(path);
	snprintf(path, sizeof(path), "%s/tmp/d.999999999.abcdef", fx->dir);
	touch(path);
	blob_path(fx, 2, path, sizeof(path));
	/* The trigger queues blob 2 in blob_gc, as a commit would. */
	sql(fx, "DELETE FROM messages WHERE uid = 2;");
	open_store(fx);
	blob_path(fx, 3, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	blob_path(fx, 4, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	blob_path(fx, 2, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/tmp/d.999999999.abcdef", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(check(fx, false), 0);
	/* The next delivery takes id 3 again, and UID 3. */
	assert_int_equal(deliver_ok(fx), 3);
	assert_int_equal(blob_of(fx, 3), 3);
}

/* ---- Schema versions ------------------------------------------------- */

static void
test_store_open_migrates_an_older_schema(void **state)
{
	struct fx *fx = *state;
	struct store_app_password *list;
	struct store_mailbox mb;
	enum store_err err;
	struct store_msg *msgs = NULL;
	size_t nmsgs = 0;
	size_t n;

	deliver_ok(fx);
	store_close(&fx->st);
	/* What a version 1 store looked like. */
	sql(fx, "DROP TABLE queue; DROP TABLE app_passwords;"
	    "DROP TABLE subscriptions;"
	    "ALTER TABLE structures DROP COLUMN in_reply_to;"
	    "ALTER TABLE structures DROP COLUMN refs;"
	    "UPDATE mailboxes SET subscribed = (name = 'INBOX');"
	    "ALTER TABLE messages DROP COLUMN saved;"
	    "UPDATE meta SET value = 1 WHERE key = 'schema_version';");
	open_store(fx);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "phone",
	    "$y$x", 0, &err), 0);
	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	store_app_password_list_free(&list, n);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(mb.messages, 1);
	/* Version 7 keeps save dates (RFC 8514); older rows have none. */
	assert_int_equal(store_msg_list(fx->st, mb.id, 1, UINT32_MAX, &msgs,
	    &nmsgs, &err), 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0].saved, 0);
	store_msg_list_free(&msgs, nmsgs);
	/* Version 4 took the subscriptions over from the column. */
	assert_true(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "Sent", &mb,
	    &err), 0);
	assert_false(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(check(fx, false), 0);
	/* Version 5 indexed the queue's blobs (fails: "no such index"). */
	store_close(&fx->st);
	sql(fx, "SELECT 1 FROM queue INDEXED BY queue_blob LIMIT 0;");
	open_store(fx);
}

static void
test_store_open_refuses_a_newer_schema(void **state)
{
	struct fx *fx = *state;
	char err[256];

	store_close(&fx->st);
	sql(fx, "UPDATE meta SET value = 99 WHERE key = 'schema_version';");
	fx->st = store_open(fx->dir, err, sizeof(err));
	assert_null(fx->st);
	assert_non_null(strstr(err, "newer"));
	sql(fx, "UPDATE meta SET value = 9 WHERE key = 'schema_version';");
	open_store(fx);
}

/* ---- Failures -------------------------------------------------------- */

struct done {
	int calls;
	enum store_err err;
};

static void
on_delivered(void *arg, const struct store_delivery_result *r, size_t n)
{
	struct done *d = arg;

	assert_int_equal(n, 1);
	d->calls++;
	d->err = r[0].err;
}

static void
on_changed(void *arg, const struct store_change_result *r)
{
	struct done *d = arg;

	d->calls++;
	d->err = r->err;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
test_store_failed_rename_fails_only_its_request(void **state)
{
	struct fx *fx = *state;
	struct done dd = { 0 }, dc = { 0 };
	struct event_base *base = event_base_new();
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	struct store_delivery *d;
	enum store_err err;
	char dir[600], keep[600];
	uint32_t uid;

	uid = deliver_ok(fx);
	store_close(&fx->st);
	/* The next body goes to blobs/01; make that impossible. */
	sql(fx, "UPDATE meta SET value = 256 WHERE key = 'blob_next';");
	snprintf(dir, sizeof(dir), "%s/blobs/01", fx->dir);
	snprintf(keep, sizeof(keep), "%s/blobs/01.away", fx->dir);
	assert_int_equal(rename(dir, keep), 0);
	touch(dir);
	open_store(fx);
	event_add(tick, &(struct timeval){ 0, 10000 });
	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, text, sizeof(text) - 1, &err),
	    0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_submit(d, base, on_delivered, &dd), 0);
	{
		struct store_change c = {
			.mailbox = fx->inbox, .uids = &uid, .nuids = 1,
			.kind = STORE_CHANGE_FLAGS, .mode = STORE_FLAGS_ADD,
			.flags = STORE_FLAG_SEEN,
		};

		assert_int_equal(store_change_submit(fx->st, &c, base,
		    on_changed, &dc), 0);
	}
	while (dd.calls == 0 || dc.calls == 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(dd.err, STORE_TEMP);
	assert_int_equal(dc.err, STORE_OK);
	{
		struct store_mailbox mb;

		assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX",
		    &mb, &err), 0);
		assert_int_equal(mb.messages, 1);
		assert_int_equal(mb.unseen, 0);
		assert_int_equal(mb.uidnext, 2);
		store_mailbox_deinit(&mb);
	}
	/* The world mends; so does delivery. */
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rename(keep, dir), 0);
	assert_int_equal(deliver_ok(fx), 2);
	assert_int_equal(blob_of(fx, 2), 256);
	assert_int_equal(check(fx, false), 0);
	event_free(tick);
	event_base_free(base);
}

static void
test_store_full_disk_fails_no_space_and_damages_nothing(void **state)
{
	struct fx *fx = *state;
	struct fx *full = calloc(1, sizeof(*full));
	char mnt[600], data[700], *big;
	size_t len = 48 * 1024, stored = 0;
	enum store_err last = STORE_OK;
	uint32_t uids[64];

	snprintf(mnt, sizeof(mnt), "%s/tmpfs", fx->dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
		rmdir(mnt);
		free(full);
		skip();
	}
	snprintf(data, sizeof(data), "%s/data", mnt);
	assert_int_equal(setup_in(full, data), 0);
	big = malloc(len);
	memset(big, 'x', len);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	for (int i = 0; i < 64; i++) {
		struct store_delivery_result r;

		big[20] = (char)('A' + i % 26);
		r = deliver(full, big, len);
		if (r.err != STORE_OK) {
			last = r.err;
			break;
		}
		uids[stored++] = r.uid;
	}
	/* The disk filled: STORE_NO_SPACE (a temporary failure the protocols
	 * name), not a crash, not a loss. */
	assert_int_equal(last, STORE_NO_SPACE);
	assert_true(stored > 2);
	for (size_t i = 0; i < stored; i++) {
		struct store_msg *list;
		enum store_err err;
		char *back = malloc(len);
		size_t n;
		int fd;

		assert_int_equal(store_msg_list(full->st, full->inbox, uids[i],
		    uids[i], &list, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(list[0].size, len);
		fd = store_blob_open(full->st, list[0].blob, &err);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, back, len, 0), len);
		assert_int_equal(back[20], 'A' + i % 26);
		close(fd);
		free(back);
		store_msg_list_free(&list, n);
	}
	/* Still full: fails again, still cleanly. */
	assert_int_equal(deliver(full, big, len).err, STORE_NO_SPACE);
	assert_int_equal(check(full, false), 0);
	/* Room again (expunging may itself need room: try until it
	 * works), and delivery works again. */
	{
		struct store_change_result r;
		struct store_change c = {
			.mailbox = full->inbox, .uids = uids, .nuids = 2,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		if (store_change_commit(full->st, &c, &r) < 0)
			assert_int_equal(r.err, STORE_NO_SPACE);
		store_change_result_deinit(&r);
	}
	store_close(&full->st);
	open_store(full);
	assert_int_equal(check(full, false), 0);
	store_close(&full->st);
	assert_int_equal(umount(mnt), 0);
	rmdir(mnt);
	free(big);
	free(full);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_store_check_clean_store_has_no_findings),
		T(test_store_check_missing_body_found_and_expunged),
		T(test_store_check_orphan_file_found_and_removed),
		T(test_store_check_damaged_counters_repaired),
		T(test_store_open_cleans_what_a_crash_left),
		T(test_store_open_migrates_an_older_schema),
		T(test_store_open_refuses_a_newer_schema),
		T(test_store_failed_rename_fails_only_its_request),
		T(test_store_full_disk_fails_no_space_and_damages_nothing),
#undef T
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
