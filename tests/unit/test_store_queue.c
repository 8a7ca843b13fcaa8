/*
 * Unit tests for the outbound queue of the store (store.h, Outbound
 * queue): what store_delivery_queue() left is listed with its envelope,
 * claimed under a lease that a crash leaves to expire, deferred with the
 * remote reply and the next attempt, removed when delivered or failed
 * (and the body with it once nothing holds it), held, released, retried
 * and deleted by an administrator.
 */
#include <dirent.h>
#include <ftw.h>
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
#include <sqlite3.h>

#include "store/store.h"

#define NOW INT64_C(1700000000)

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice;
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Body files under DATA/blobs. */
static int
blob_files(const char *dir)
{
	char path[600];
	int n = 0;

	for (int i = 0; i < 256; i++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/blobs/%02x", dir, i);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_account a = {
		.address = "alice@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	const char *base = getenv("POSTERN_TEST_TMP");
	enum store_err err;
	char msg[256];

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(fx->dir, sizeof(fx->dir), "%s/storeq.XXXXXX", base);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st == NULL) {
		fprintf(stderr, "store_open: %s\n", msg);
		return -1;
	}
	if (store_domain_add(fx->st, "example.org", &err) < 0 ||
	    store_account_add(fx->st, &a, &err) < 0)
		return -1;
	fx->alice = a.id;
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

static const char msg_text[] =
    "From: alice@example.org\r\n"
    "To: friend@example.com\r\n"
    "Subject: out\r\n"
    "\r\n"
    "to the world\r\n";

/* Queues msg_text for the recipients (NULL-terminated), with a local copy
 * for alice when is_local. */
static void
queue_msg(struct fx *fx, const char *sender, bool is_local, ...)
{
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	const char *rcpt;
	va_list ap;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, msg_text, strlen(msg_text),
	    &err), 0);
	if (is_local)
		store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	va_start(ap, is_local);
	while ((rcpt = va_arg(ap, const char *)) != NULL)
		store_delivery_queue(d, sender, rcpt,
		    strcmp(rcpt, "Friend@Example.COM") == 0 ?
		    "RET=HDRS ENVID=x1" : NULL,
		    strcmp(rcpt, "Friend@Example.COM") == 0 ?
		    "NOTIFY=FAILURE,DELAY" : NULL);
	va_end(ap);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(res[i].err, STORE_OK);
	free(res);
}

static void
test_store_queue_list_shows_envelope_and_state(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list, e;
	enum store_err err;
	size_t n;

	queue_msg(fx, "alice@example.org", true, "Friend@Example.COM",
	    "other@example.net", NULL);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(list[0].id < list[1].id);
	assert_string_equal(list[0].sender, "alice@example.org");
	assert_string_equal(list[0].rcpt, "Friend@Example.COM");
	assert_string_equal(list[0].domain, "example.com");
	assert_string_equal(list[0].dsn_envelope, "RET=HDRS ENVID=x1");
	assert_string_equal(list[0].dsn_rcpt, "NOTIFY=FAILURE,DELAY");
	assert_int_equal(list[0].size, strlen(msg_text));
	assert_int_equal(list[0].attempts, 0);
	assert_int_equal(list[0].state, STORE_QUEUE_QUEUED);
	assert_null(list[0].last_reply);
	assert_int_equal(list[0].lease_until, 0);
	assert_false(list[0].is_warned);
	assert_true(list[0].next_attempt > 0);
	assert_int_equal(list[0].next_attempt, list[0].created);
	assert_string_equal(list[1].domain, "example.net");
	assert_null(list[1].dsn_envelope);
	assert_int_equal(list[0].blob, list[1].blob);

	assert_int_equal(store_queue_get(fx->st, list[1].id, &e, &err), 0);
	assert_string_equal(e.rcpt, "other@example.net");
	store_queue_entry_deinit(&e);
	assert_int_equal(store_queue_get(fx->st, list[1].id + 100, &e, &err),
	    -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_queue_list_free(&list, n);
	assert_null(list);
}

static void
test_store_queue_claim_leases_until_expiry_or_restart(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list, *again;
	enum store_err err;
	char msg[256];
	size_t n, m;
	int64_t now = NOW * 2;	/* later than created */

	queue_msg(fx, "alice@example.org", false, "a@example.com",
	    "b@example.com", "c@example.net", NULL);
	assert_int_equal(store_queue_claim(fx->st, now, 600, 2, &list, &n,
	    &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].rcpt, "a@example.com");
	assert_string_equal(list[1].rcpt, "b@example.com");
	assert_int_equal(list[0].lease_until, now + 600);
	/* Leased entries are not due again; the third is. */
	assert_int_equal(store_queue_claim(fx->st, now, 600, 10, &again, &m,
	    &err), 0);
	assert_int_equal(m, 1);
	assert_string_equal(again[0].rcpt, "c@example.net");
	store_queue_list_free(&again, m);
	assert_int_equal(store_queue_claim(fx->st, now + 599, 600, 10,
	    &again, &m, &err), 0);
	assert_int_equal(m, 0);
	assert_null(again);
	/* A runner that died: its leases end, the entries are due again. */
	assert_int_equal(store_queue_claim(fx->st, now + 600, 600, 10,
	    &again, &m, &err), 0);
	assert_int_equal(m, 3);
	store_queue_list_free(&again, m);

	/* A restart (the store reopened) keeps the leases until a runner
	 * starting up ends them. */
	store_close(&fx->st);
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	assert_non_null(fx->st);
	assert_int_equal(store_queue_claim(fx->st, now + 700, 600, 10,
	    &again, &m, &err), 0);
	assert_int_equal(m, 0);
	assert_int_equal(store_queue_unlease_all(fx->st, &err), 0);
	assert_int_equal(store_queue_claim(fx->st, now + 700, 600, 10,
	    &again, &m, &err), 0);
	assert_int_equal(m, 3);
	store_queue_list_free(&again, m);
	store_queue_list_free(&list, n);

	/* Nonsense is refused. */
	assert_int_equal(store_queue_claim(fx->st, now, 600, 0, &again, &m,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_queue_claim(fx->st, now, 0, 1, &again, &m,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);
}

static void
test_store_queue_deferred_keeps_reply_and_schedule(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list, e;
	enum store_err err;
	size_t n;
	int64_t now = NOW * 2;

	queue_msg(fx, "alice@example.org", false, "a@example.com", NULL);
	assert_int_equal(store_queue_claim(fx->st, now, 600, 10, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	/* A multi-line reply becomes one line. */
	assert_int_equal(store_queue_finish(fx->st, list[0].id,
	    STORE_QUEUE_DEFERRED, "451-4.3.0 busy\r\n451 4.3.0 later",
	    now + 300, NULL, &err), 0);
	assert_int_equal(store_queue_get(fx->st, list[0].id, &e, &err), 0);
	assert_int_equal(e.attempts, 1);
	assert_string_equal(e.last_reply, "451-4.3.0 busy  451 4.3.0 later");
	assert_int_equal(e.next_attempt, now + 300);
	assert_int_equal(e.lease_until, 0);
	store_queue_entry_deinit(&e);
	store_queue_list_free(&list, n);
	/* Not due before next_attempt, due from it. */
	assert_int_equal(store_queue_claim(fx->st, now + 299, 600, 10, &list,
	    &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_claim(fx->st, now + 300, 600, 10, &list,
	    &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_queue_warned(fx->st, list[0].id, &err), 0);
	assert_int_equal(store_queue_get(fx->st, list[0].id, &e, &err), 0);
	assert_true(e.is_warned);
	store_queue_entry_deinit(&e);
	store_queue_list_free(&list, n);
}

static void
test_store_queue_delivered_and_failed_release_the_body(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list, e;
	enum store_err err;
	size_t n;

	queue_msg(fx, "alice@example.org", false, "Friend@Example.COM",
	    "b@example.net", NULL);
	assert_int_equal(blob_files(fx->dir), 1);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_queue_finish(fx->st, list[0].id,
	    STORE_QUEUE_DELIVERED, NULL, 0, NULL, &err), 0);
	/* The other recipient still holds the body. */
	assert_int_equal(blob_files(fx->dir), 1);
	/* A failure hands back what a bounce needs. */
	assert_int_equal(store_queue_finish(fx->st, list[1].id,
	    STORE_QUEUE_FAILED, "550 5.1.1 no such user", 0, &e, &err), 0);
	assert_string_equal(e.sender, "alice@example.org");
	assert_string_equal(e.rcpt, "b@example.net");
	assert_int_equal(e.blob, list[1].blob);
	store_queue_entry_deinit(&e);
	assert_int_equal(blob_files(fx->dir), 0);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	/* Gone twice is not found. */
	assert_int_equal(store_queue_finish(fx->st, list[1].id,
	    STORE_QUEUE_DELIVERED, NULL, 0, NULL, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_queue_list_free(&list, n);

	/* With a local copy, the body stays for the mailbox. */
	queue_msg(fx, "alice@example.org", true, "c@example.net", NULL);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(store_queue_finish(fx->st, list[0].id,
	    STORE_QUEUE_DELIVERED, NULL, 0, NULL, &err), 0);
	assert_int_equal(blob_files(fx->dir), 1);
	store_queue_list_free(&list, n);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

static void
test_store_queue_admin_hold_release_retry_delete(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list, *due, e;
	enum store_err err;
	size_t n, m, changed;
	int64_t now = NOW * 2;

	queue_msg(fx, "alice@example.org", false, "a@example.com",
	    "b@example.com", NULL);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(store_queue_act(fx->st, list[0].id, STORE_QUEUE_HOLD,
	    now, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_queue_get(fx->st, list[0].id, &e, &err), 0);
	assert_int_equal(e.state, STORE_QUEUE_HELD);
	store_queue_entry_deinit(&e);
	/* A held entry is never claimed. */
	assert_int_equal(store_queue_claim(fx->st, now, 600, 10, &due, &m,
	    &err), 0);
	assert_int_equal(m, 1);
	assert_int_equal(due[0].id, list[1].id);
	/* Deferred far away, then retried: due now. */
	assert_int_equal(store_queue_finish(fx->st, due[0].id,
	    STORE_QUEUE_DEFERRED, "421 later", now + 86400, NULL, &err), 0);
	store_queue_list_free(&due, m);
	assert_int_equal(store_queue_act(fx->st, 0, STORE_QUEUE_RETRY, now,
	    &changed, &err), 0);
	assert_int_equal(changed, 1);	/* the held one stays held */
	assert_int_equal(store_queue_get(fx->st, list[1].id, &e, &err), 0);
	assert_int_equal(e.next_attempt, now);
	assert_string_equal(e.last_reply, "421 later");
	store_queue_entry_deinit(&e);
	/* Release makes the held one due at once. */
	assert_int_equal(store_queue_act(fx->st, list[0].id,
	    STORE_QUEUE_RELEASE, now, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_queue_get(fx->st, list[0].id, &e, &err), 0);
	assert_int_equal(e.state, STORE_QUEUE_QUEUED);
	assert_int_equal(e.next_attempt, now);
	store_queue_entry_deinit(&e);
	/* Retry of a held entry releases it. */
	assert_int_equal(store_queue_act(fx->st, list[0].id, STORE_QUEUE_HOLD,
	    now, NULL, &err), 0);
	assert_int_equal(store_queue_act(fx->st, list[0].id,
	    STORE_QUEUE_RETRY, now + 5, NULL, &err), 0);
	assert_int_equal(store_queue_get(fx->st, list[0].id, &e, &err), 0);
	assert_int_equal(e.state, STORE_QUEUE_QUEUED);
	assert_int_equal(e.next_attempt, now + 5);
	store_queue_entry_deinit(&e);
	/* Delete: gone, body too. */
	assert_int_equal(store_queue_act(fx->st, list[0].id,
	    STORE_QUEUE_DELETE, now, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_queue_act(fx->st, list[0].id,
	    STORE_QUEUE_DELETE, now, &changed, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_queue_act(fx->st, list[0].id,
	    STORE_QUEUE_HOLD, now, &changed, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(blob_files(fx->dir), 1);
	assert_int_equal(store_queue_act(fx->st, 0, STORE_QUEUE_DELETE, now,
	    &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(blob_files(fx->dir), 0);
	store_queue_list_free(&list, n);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

/* A store of schema version 2 (before the queue had held, lease_until
 * and warned) is migrated on open, its entries intact. */
static void
test_store_queue_migrates_a_version_2_store(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list;
	enum store_err err;
	char path[600], msg[256];
	sqlite3 *db;
	size_t n;

	queue_msg(fx, "alice@example.org", false, "a@example.com", NULL);
	assert_int_equal(store_queue_act(fx->st, 0, STORE_QUEUE_HOLD, NOW,
	    NULL, &err), 0);
	store_close(&fx->st);
	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    "ALTER TABLE queue DROP COLUMN held;"
	    "ALTER TABLE queue DROP COLUMN lease_until;"
	    "ALTER TABLE queue DROP COLUMN warned;"
	    "ALTER TABLE queue DROP COLUMN authenticated;"
	    "ALTER TABLE queue DROP COLUMN report;"
	    "ALTER TABLE structures DROP COLUMN in_reply_to;"
	    "ALTER TABLE structures DROP COLUMN refs;"
	    "UPDATE meta SET value = 2 WHERE key = 'schema_version';",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	assert_non_null(fx->st);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].rcpt, "a@example.com");
	assert_int_equal(list[0].state, STORE_QUEUE_QUEUED);
	store_queue_list_free(&list, n);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

/* Schema 6: an entry says whether a logged-in account sent it (only
 * that is signed and bounced outside our domains), and a local delivery
 * with NOTIFY=SUCCESS leaves a report entry, committed with it. */
static void
queue_one(struct fx *fx, bool is_authenticated, bool is_local,
    const char *dsn_rcpt)
{
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, msg_text, strlen(msg_text),
	    &err), 0);
	if (is_local) {
		store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
		store_delivery_notify(d, "sender@example.net",
		    "alice@example.org", "ENVID=e7", dsn_rcpt);
	} else {
		store_delivery_queue(d, "alice@example.org", "x@example.com",
		    NULL, dsn_rcpt);
	}
	store_delivery_set_authenticated(d, is_authenticated);
	store_delivery_set_atomic(d);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(res[i].err, STORE_OK);
	free(res);
}

static void
test_store_queue_records_authenticated_and_success_reports(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list;
	enum store_err err;
	size_t n;

	queue_one(fx, true, false, NULL);
	queue_one(fx, false, false, NULL);
	/* Local delivery: a report entry only when NOTIFY lists SUCCESS. */
	queue_one(fx, false, true, "NOTIFY=FAILURE");
	queue_one(fx, false, true, NULL);
	queue_one(fx, false, true, "ORCPT=rfc822;a@b NOTIFY=DELAY,success");
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_true(list[0].is_authenticated);
	assert_false(list[0].is_report);
	assert_false(list[1].is_authenticated);
	assert_false(list[1].is_report);
	assert_true(list[2].is_report);
	assert_false(list[2].is_authenticated);
	assert_string_equal(list[2].sender, "sender@example.net");
	assert_string_equal(list[2].rcpt, "alice@example.org");
	assert_string_equal(list[2].dsn_envelope, "ENVID=e7");
	assert_string_equal(list[2].dsn_rcpt,
	    "ORCPT=rfc822;a@b NOTIFY=DELAY,success");
	store_queue_list_free(&list, n);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

/* A report entry is written only when the local recipients took the
 * message: none for a delivery that failed (unknown mailbox). */
static void
test_store_queue_no_success_report_when_local_delivery_fails(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list;
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, msg_text, strlen(msg_text),
	    &err), 0);
	store_delivery_add(d, fx->alice, "No such folder", 0, NULL, 0);
	store_delivery_notify(d, "s@example.net", "alice@example.org", NULL,
	    "NOTIFY=SUCCESS");
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_NOT_FOUND);
	free(res);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	store_queue_list_free(&list, n);
	/* Never a report to the null sender. */
	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, msg_text, strlen(msg_text),
	    &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_notify(d, "", "alice@example.org", NULL,
	    "NOTIFY=SUCCESS");
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	free(res);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	store_queue_list_free(&list, n);
}

/* A store of schema version 5 is migrated: its entries are taken as not
 * sent by a logged-in account, and none is a report. */
static void
test_store_queue_migrates_a_version_5_store(void **state)
{
	struct fx *fx = *state;
	struct store_queue_entry *list;
	enum store_err err;
	char path[600], msg[256];
	sqlite3 *db;
	size_t n;

	queue_msg(fx, "alice@example.org", false, "a@example.com", NULL);
	store_close(&fx->st);
	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    "ALTER TABLE queue DROP COLUMN authenticated;"
	    "ALTER TABLE queue DROP COLUMN report;"
	    "ALTER TABLE structures DROP COLUMN in_reply_to;"
	    "ALTER TABLE structures DROP COLUMN refs;"
	    "UPDATE meta SET value = 5 WHERE key = 'schema_version';",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	assert_non_null(fx->st);
	assert_int_equal(store_queue_list(fx->st, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].rcpt, "a@example.com");
	assert_false(list[0].is_authenticated);
	assert_false(list[0].is_report);
	store_queue_list_free(&list, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_queue_list_shows_envelope_and_state, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_claim_leases_until_expiry_or_restart,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_deferred_keeps_reply_and_schedule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_delivered_and_failed_release_the_body,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_admin_hold_release_retry_delete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_migrates_a_version_2_store, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_records_authenticated_and_success_reports,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_no_success_report_when_local_delivery_fails,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_queue_migrates_a_version_5_store, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
