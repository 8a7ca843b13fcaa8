/*
 * Unit tests for store (embedded backend): the directory (domains,
 * accounts, aliases, routes), mailboxes (create, rename, delete,
 * subscribe; UIDVALIDITY never reused), deliveries (many recipients stored
 * once, per-recipient failures, quotas) and changes (flags, keywords,
 * UNCHANGEDSINCE, expunge, copy, move, POP3 retrieval), app passwords and
 * the outbound queue's share of a delivery, each asserted as a client
 * would see it: UIDs, MODSEQs, counts, COPYUID, VANISHED.
 * Search is in test_store_search.c, threads and watches in
 * test_store_async.c, store_check and failures in test_store_check.c.
 */
#include <dirent.h>
#include <errno.h>
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
#include <sqlite3.h>

#include "store/store.h"

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice, bob;
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
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *
reopen(struct fx *fx)
{
	char err[256];

	store_close(&fx->st);
	fx->st = store_open(fx->dir, err, sizeof(err));
	if (fx->st == NULL)
		fail_msg("store_open: %s", err);
	return fx->st;
}

static int64_t
account_add(struct store *st, const char *address)
{
	struct store_account a = {
		.address = (char *)address,
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	enum store_err err;

	assert_int_equal(store_account_add(st, &a, &err), 0);
	assert_int_equal(err, STORE_OK);
	assert_true(a.id > 0);
	return a.id;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("POSTERN_TEST_TMP");
	enum store_err err;
	char msg[256];

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(fx->dir, sizeof(fx->dir), "%s/store.XXXXXX", base);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st == NULL) {
		fprintf(stderr, "store_open: %s\n", msg);
		return -1;
	}
	if (store_domain_add(fx->st, "example.org", &err) < 0)
		return -1;
	fx->alice = account_add(fx->st, "alice@example.org");
	fx->bob = account_add(fx->st, "bob@example.org");
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	store_close(&fx->st);
	rm_tree(fx->dir);
	free(fx);
	return 0;
}

static char *
message(const char *subject, const char *body)
{
	char *m;

	if (asprintf(&m, "From: Carol <carol@example.net>\r\n"
	    "To: alice@example.org\r\n"
	    "Subject: %s\r\n"
	    "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	    "Message-ID: <%s@example.net>\r\n"
	    "\r\n"
	    "%s\r\n", subject, subject, body) < 0)
		abort();
	return m;
}

/* Delivers text to one recipient; returns the result. */
static struct store_delivery_result
deliver(struct store *st, int64_t account, const char *mailbox,
    const char *text, uint32_t flags, const char *keywords, int64_t date)
{
	struct store_delivery_result *res, r;
	struct store_delivery *d;
	enum store_err err;
	size_t n;

	d = store_delivery_new(st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, text, strlen(text), &err), 0);
	store_delivery_add(d, account, mailbox, flags, keywords, date);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 1);
	r = res[0];
	free(res);
	return r;
}

/* Delivers a fresh message to account's mailbox; returns its UID. */
static uint32_t
deliver_ok(struct store *st, int64_t account, const char *mailbox,
    const char *subject, uint32_t flags, const char *keywords)
{
	char *m = message(subject, "Hello, this is the body.");
	struct store_delivery_result r = deliver(st, account, mailbox, m,
	    flags, keywords, 0);

	free(m);
	assert_int_equal(r.err, STORE_OK);
	assert_true(r.uid > 0);
	return r.uid;
}

static struct store_mailbox
mailbox(struct store *st, int64_t account, const char *name)
{
	struct store_mailbox mb;
	enum store_err err;

	if (store_mailbox_get(st, account, name, &mb, &err) < 0)
		fail_msg("mailbox %s: %s", name, store_err_text(err));
	return mb;
}

/* Number of regular files under dir/blobs. */
static int
blob_files(const char *dir)
{
	char path[600];
	int n = 0;

	for (int i = 0; i < 256; i++) {
		struct dirent *de;
		DIR *dp;

		snprintf(path, sizeof(path), "%s/blobs/%02x", dir, i);
		if ((dp = opendir(path)) == NULL)
			continue;
		while ((de = readdir(dp)) != NULL)
			n += de->d_name[0] != '.';
		closedir(dp);
	}
	return n;
}

/* The first column of the first row of sql, run on the store's database
 * beside the store (WAL readers do not disturb it). */
static int64_t
db_count(struct fx *fx, const char *sql)
{
	char path[600];
	sqlite3_stmt *s;
	sqlite3 *db;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL),
	    SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static int
flags_commit(struct store *st, int64_t mailbox, const uint32_t *uids,
    size_t n, enum store_flag_mode mode, uint32_t flags,
    const char *keywords, uint64_t unchangedsince,
    struct store_change_result *r)
{
	struct store_change c = {
		.mailbox = mailbox,
		.uids = uids,
		.nuids = n,
		.kind = STORE_CHANGE_FLAGS,
		.mode = mode,
		.flags = flags,
		.keywords = keywords,
		.unchangedsince = unchangedsince,
	};

	return store_change_commit(st, &c, r);
}

/* ---- Basics ---------------------------------------------------------- */

static void
test_store_err_text_and_special_names(void **state)
{
	(void)state;
	assert_string_equal(store_err_text(STORE_OVER_QUOTA), "over quota");
	assert_string_equal(store_err_text(STORE_TEMP), "temporary failure");
	assert_string_equal(store_special_name(STORE_SPECIAL_SENT), "\\Sent");
	assert_string_equal(store_special_name(STORE_SPECIAL_JUNK), "\\Junk");
	assert_null(store_special_name(STORE_SPECIAL_NONE));
}

static void
test_store_open_refuses_unwritable_dir(void **state)
{
	char err[256];

	(void)state;
	assert_null(store_open("/proc/postern-no-such/dir", err,
	    sizeof(err)));
	assert_true(strlen(err) > 0);
}

/* ---- Domains --------------------------------------------------------- */

static void
test_store_domain_add_list_and_duplicate(void **state)
{
	struct fx *fx = *state;
	enum store_err err;
	char **names;

	assert_int_equal(store_domain_add(fx->st, "Example.NET", &err), 0);
	assert_int_equal(store_domain_add(fx->st, "example.net", &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	assert_int_equal(store_domain_add(fx->st, "bad..domain", &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_domain_add(fx->st, "-bad.org", &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_domain_list(fx->st, &names, &err), 0);
	assert_string_equal(names[0], "example.net");
	assert_string_equal(names[1], "example.org");
	assert_null(names[2]);
	store_strings_free(&names);
	assert_null(names);
	assert_true(is_store_domain_local(fx->st, "EXAMPLE.org"));
	assert_false(is_store_domain_local(fx->st, "example.com"));
}

static void
test_store_domain_del_refused_while_accounts_exist(void **state)
{
	struct fx *fx = *state;
	enum store_err err;

	assert_int_equal(store_domain_del(fx->st, "example.org", &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
	assert_int_equal(store_domain_del(fx->st, "nowhere.org", &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    0);
	assert_int_equal(store_account_del(fx->st, "bob@example.org", &err),
	    0);
	assert_int_equal(store_alias_add(fx->st, "info@example.org",
	    "someone@example.com", &err), 0);
	assert_int_equal(store_domain_del(fx->st, "example.org", &err), 0);
	assert_false(is_store_domain_local(fx->st, "example.org"));
	/* Its aliases went with it. */
	assert_int_equal(store_domain_add(fx->st, "example.org", &err), 0);
	{
		char **targets;

		assert_int_equal(store_alias_targets(fx->st,
		    "info@example.org", &targets, &err), -1);
		assert_int_equal(err, STORE_NOT_FOUND);
	}
}

/* ---- Accounts -------------------------------------------------------- */

static void
test_store_account_add_creates_special_use_mailboxes(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *name;
		enum store_special special;
	} expected[] = {
		{ "Archive", STORE_SPECIAL_ARCHIVE },
		{ "Drafts", STORE_SPECIAL_DRAFTS },
		{ "INBOX", STORE_SPECIAL_NONE },
		{ "Junk", STORE_SPECIAL_JUNK },
		{ "Sent", STORE_SPECIAL_SENT },
		{ "Trash", STORE_SPECIAL_TRASH },
	};
	struct store_mailbox *list;
	enum store_err err;
	size_t n;

	assert_int_equal(store_mailbox_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(list[i].name, expected[i].name);
		assert_int_equal(list[i].special, expected[i].special);
		assert_true(list[i].is_subscribed);
		assert_int_equal(list[i].uidnext, 1);
		assert_int_equal(list[i].messages, 0);
		assert_true(list[i].uidvalidity > 0);
		assert_false(list[i].has_children);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(list[i].uidvalidity,
			    list[j].uidvalidity);
	}
	store_mailbox_list_free(&list, n);
	assert_null(list);
}

static void
test_store_account_add_errors(void **state)
{
	struct fx *fx = *state;
	struct store_account a = { .address = "dave@nowhere.org" };
	enum store_err err;

	assert_int_equal(store_account_add(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	a.address = "ALICE@example.org";
	assert_int_equal(store_account_add(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	a.address = "no-at-sign";
	assert_int_equal(store_account_add(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	a.address = "x y@example.org";
	assert_int_equal(store_account_add(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	a.address = "dave@example.org";
	a.imap = 7;
	assert_int_equal(store_account_add(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_INVALID);
}

static void
test_store_account_get_update_list(void **state)
{
	struct fx *fx = *state;
	struct store_account a, b, *list;
	enum store_err err;
	size_t n;

	assert_int_equal(store_account_get(fx->st, "Alice@EXAMPLE.org", &a,
	    &err), 0);
	assert_int_equal(a.id, fx->alice);
	assert_string_equal(a.address, "alice@example.org");
	assert_true(a.is_enabled);
	assert_int_equal(a.imap, STORE_SWITCH_DEFAULT);
	assert_null(a.password_hash);
	assert_true(a.created > 0);

	free(a.display_name);
	a.display_name = strdup("Alice Liddell");
	a.password_hash = strdup("$y$j9T$salt$hash");
	a.scram_sha256 = strdup("SCRAM-SHA-256$4096:c2FsdA==$a:b");
	a.quota_bytes = 1000000;
	a.quota_messages = 50;
	a.is_enabled = false;
	a.imap = STORE_SWITCH_ON;
	a.pop3 = STORE_SWITCH_OFF;
	a.submission = STORE_SWITCH_ON;
	a.forward_to = strdup("Alice@Example.COM");
	a.is_forward_kept = true;
	a.pop3_retention_days = 30;
	a.locked_until = 1700000000;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	assert_int_equal(store_account_get_by_id(fx->st, fx->alice, &b, &err),
	    0);
	assert_string_equal(b.display_name, "Alice Liddell");
	assert_string_equal(b.password_hash, "$y$j9T$salt$hash");
	assert_string_equal(b.scram_sha256, "SCRAM-SHA-256$4096:c2FsdA==$a:b");
	assert_int_equal(b.quota_bytes, 1000000);
	assert_int_equal(b.quota_messages, 50);
	assert_false(b.is_enabled);
	assert_int_equal(b.imap, STORE_SWITCH_ON);
	assert_int_equal(b.pop3, STORE_SWITCH_OFF);
	assert_int_equal(b.submission, STORE_SWITCH_ON);
	assert_string_equal(b.forward_to, "alice@example.com");
	assert_true(b.is_forward_kept);
	assert_int_equal(b.pop3_retention_days, 30);
	assert_int_equal(b.locked_until, 1700000000);
	assert_int_equal(b.created, a.created);
	store_account_deinit(&b);

	a.id = 999999;
	assert_int_equal(store_account_update(fx->st, &a, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_account_deinit(&a);

	assert_int_equal(store_account_get(fx->st, "zed@example.org", &a,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_account_get_by_id(fx->st, 424242, &a, &err),
	    -1);
	assert_int_equal(err, STORE_NOT_FOUND);

	assert_int_equal(store_domain_add(fx->st, "example.net", &err), 0);
	account_add(fx->st, "zoe@example.net");
	assert_int_equal(store_account_list(fx->st, NULL, &list, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].address, "alice@example.org");
	assert_string_equal(list[1].address, "bob@example.org");
	assert_string_equal(list[2].address, "zoe@example.net");
	store_account_list_free(&list, n);
	assert_int_equal(store_account_list(fx->st, "example.net", &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].address, "zoe@example.net");
	store_account_list_free(&list, n);
}

static void
test_store_account_del_removes_mailboxes_and_bodies(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox *list;
	enum store_err err;
	size_t n;

	deliver_ok(fx->st, fx->alice, NULL, "one", 0, NULL);
	deliver_ok(fx->st, fx->alice, "Sent", "two", 0, NULL);
	deliver_ok(fx->st, fx->bob, NULL, "three", 0, NULL);
	assert_int_equal(blob_files(fx->dir), 3);
	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    0);
	assert_int_equal(blob_files(fx->dir), 1);
	assert_int_equal(store_mailbox_list(fx->st, fx->alice, &list, &n,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

static void
test_store_account_usage_follows_messages(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	uint64_t bytes, msgs;
	enum store_err err;
	char *m = message("usage", "x");
	struct store_delivery_result d;
	struct store_mailbox inbox;
	uint32_t uid;

	assert_int_equal(store_account_usage(fx->st, fx->alice, &bytes, &msgs,
	    &err), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(msgs, 0);
	d = deliver(fx->st, fx->alice, NULL, m, 0, NULL, 0);
	uid = d.uid;
	deliver(fx->st, fx->alice, "Sent", m, 0, NULL, 0);
	assert_int_equal(store_account_usage(fx->st, fx->alice, &bytes, &msgs,
	    &err), 0);
	assert_int_equal(bytes, 2 * strlen(m));
	assert_int_equal(msgs, 2);
	inbox = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(inbox.size, strlen(m));
	{
		struct store_change c = {
			.mailbox = inbox.id, .uids = &uid, .nuids = 1,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
	}
	assert_int_equal(store_account_usage(fx->st, fx->alice, &bytes, &msgs,
	    &err), 0);
	assert_int_equal(bytes, strlen(m));
	assert_int_equal(msgs, 1);
	assert_int_equal(store_account_usage(fx->st, 999999, &bytes, &msgs,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_mailbox_deinit(&inbox);
	free(m);
}

/* ---- Aliases and routes ---------------------------------------------- */

static void
test_store_alias_add_targets_list_del(void **state)
{
	struct fx *fx = *state;
	enum store_err err;
	char **list;

	assert_int_equal(store_alias_add(fx->st, "Info@example.org",
	    "alice@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "info@example.org",
	    "bob@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "info@example.org",
	    "BOB@example.org", &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	assert_int_equal(store_alias_add(fx->st, "info@elsewhere.org",
	    "bob@example.org", &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_alias_add(fx->st, "info@example.org",
	    "not an address", &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_alias_targets(fx->st, "INFO@example.org",
	    &list, &err), 0);
	assert_string_equal(list[0], "alice@example.org");
	assert_string_equal(list[1], "bob@example.org");
	assert_null(list[2]);
	store_strings_free(&list);
	assert_int_equal(store_alias_list(fx->st, &list, &err), 0);
	assert_string_equal(list[0], "info@example.org");
	assert_string_equal(list[1], "alice@example.org");
	assert_string_equal(list[2], "info@example.org");
	assert_string_equal(list[3], "bob@example.org");
	assert_null(list[4]);
	store_strings_free(&list);
	assert_int_equal(store_alias_del(fx->st, "info@example.org",
	    "alice@example.org", &err), 0);
	assert_int_equal(store_alias_del(fx->st, "info@example.org",
	    "alice@example.org", &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_alias_del(fx->st, "info@example.org", NULL,
	    &err), 0);
	assert_int_equal(store_alias_targets(fx->st, "info@example.org",
	    &list, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_null(list);
}

static void
test_store_alias_loop_refused(void **state)
{
	struct fx *fx = *state;
	enum store_err err;

	assert_int_equal(store_alias_add(fx->st, "a@example.org",
	    "a@example.org", &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
	assert_int_equal(store_alias_add(fx->st, "a@example.org",
	    "b@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "b@example.org",
	    "c@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "c@example.org",
	    "a@example.org", &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
	assert_int_equal(store_alias_add(fx->st, "c@example.org",
	    "alice@example.org", &err), 0);
}

static void
test_store_route_resolve_accounts_aliases_catchall(void **state)
{
	struct fx *fx = *state;
	struct store_route r;
	struct store_account a;
	enum store_err err;

	assert_int_equal(store_route_resolve(fx->st, "Alice@Example.org", &r,
	    &err), 0);
	assert_int_equal(r.naccounts, 1);
	assert_int_equal(r.accounts[0], fx->alice);
	assert_int_equal(r.nexternal, 0);
	store_route_deinit(&r);

	assert_int_equal(store_route_resolve(fx->st, "nobody@example.org", &r,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_route_resolve(fx->st, "x@example.com", &r,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);

	/* team -> sales -> {alice, bob, partner@example.com} */
	assert_int_equal(store_alias_add(fx->st, "team@example.org",
	    "sales@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "sales@example.org",
	    "alice@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "sales@example.org",
	    "bob@example.org", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "sales@example.org",
	    "partner@example.com", &err), 0);
	assert_int_equal(store_alias_add(fx->st, "team@example.org",
	    "alice@example.org", &err), 0);
	assert_int_equal(store_route_resolve(fx->st, "team@example.org", &r,
	    &err), 0);
	assert_int_equal(r.naccounts, 2);
	assert_int_equal(r.nexternal, 1);
	assert_string_equal(r.external[0], "partner@example.com");
	store_route_deinit(&r);

	/* The catch-all takes unknown local parts only. */
	assert_int_equal(store_domain_catchall_set(fx->st, "example.org",
	    "bob@example.org", &err), 0);
	assert_int_equal(store_route_resolve(fx->st, "whoever@example.org",
	    &r, &err), 0);
	assert_int_equal(r.naccounts, 1);
	assert_int_equal(r.accounts[0], fx->bob);
	store_route_deinit(&r);
	assert_int_equal(store_route_resolve(fx->st, "alice@example.org", &r,
	    &err), 0);
	assert_int_equal(r.accounts[0], fx->alice);
	store_route_deinit(&r);
	assert_int_equal(store_domain_catchall_set(fx->st, "example.org",
	    NULL, &err), 0);
	assert_int_equal(store_route_resolve(fx->st, "whoever@example.org",
	    &r, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_domain_catchall_set(fx->st, "missing.org",
	    NULL, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);

	/* Forwarding: without a kept copy the account drops out. */
	assert_int_equal(store_account_get(fx->st, "bob@example.org", &a,
	    &err), 0);
	a.forward_to = strdup("bob@elsewhere.net");
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	assert_int_equal(store_route_resolve(fx->st, "bob@example.org", &r,
	    &err), 0);
	assert_int_equal(r.naccounts, 0);
	assert_int_equal(r.nexternal, 1);
	assert_string_equal(r.external[0], "bob@elsewhere.net");
	store_route_deinit(&r);
	a.is_forward_kept = true;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	assert_int_equal(store_route_resolve(fx->st, "bob@example.org", &r,
	    &err), 0);
	assert_int_equal(r.naccounts, 1);
	assert_int_equal(r.nexternal, 1);
	store_route_deinit(&r);
	store_account_deinit(&a);
}

static void
test_store_route_resolve_stops_at_depth_limit(void **state)
{
	struct fx *fx = *state;
	struct store_route r;
	enum store_err err;
	char from[64], to[64];

	/* l0 -> l1 -> ... -> l9 -> alice: deeper than 8 levels. */
	for (int i = 0; i < 10; i++) {
		snprintf(from, sizeof(from), "l%d@example.org", i);
		if (i < 9)
			snprintf(to, sizeof(to), "l%d@example.org", i + 1);
		else
			snprintf(to, sizeof(to), "alice@example.org");
		assert_int_equal(store_alias_add(fx->st, from, to, &err), 0);
	}
	assert_int_equal(store_route_resolve(fx->st, "l0@example.org", &r,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_route_resolve(fx->st, "l3@example.org", &r,
	    &err), 0);
	assert_int_equal(r.naccounts, 1);
	store_route_deinit(&r);
}

/* ---- Mailboxes ------------------------------------------------------- */

static void
test_store_mailbox_create_names_and_parents(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb, *list;
	enum store_err err;
	size_t n;

	assert_int_equal(store_mailbox_create(fx->st, fx->alice,
	    "Work/2024/Q1", STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Work");
	assert_true(mb.has_children);
	assert_false(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	mb = mailbox(fx->st, fx->alice, "Work/2024/Q1");
	assert_false(mb.has_children);
	assert_int_equal(mb.uidnext, 1);
	assert_int_equal(mb.highestmodseq, 1);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Work",
	    STORE_SPECIAL_NONE, &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "inbox",
	    STORE_SPECIAL_NONE, &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	static const char *const bad[] = {
		"", "/lead", "trail/", "a//b", "star*", "per%cent",
		"ctl\x01", "\xff\xfe",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(store_mailbox_create(fx->st, fx->alice,
		    bad[i], STORE_SPECIAL_NONE, &err), -1);
		assert_int_equal(err, STORE_INVALID);
	}
	assert_int_equal(store_mailbox_create(fx->st, 999999, "X",
	    STORE_SPECIAL_NONE, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	/* UTF-8 names (RFC 9051 §5.1) are fine. */
	assert_int_equal(store_mailbox_create(fx->st, fx->alice,
	    "Entw\xc3\xbcrfe", STORE_SPECIAL_DRAFTS, &err), 0);
	/* INBOX children: the first level is INBOX in any case. */
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "inbox/sub",
	    STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "INBOX/sub");
	assert_string_equal(mb.name, "INBOX/sub");
	store_mailbox_deinit(&mb);
	mb = mailbox(fx->st, fx->alice, "InBoX");
	assert_string_equal(mb.name, "INBOX");
	assert_true(mb.has_children);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "Nope", &mb,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	/* Another account's names are its own. */
	assert_int_equal(store_mailbox_get(fx->st, fx->bob, "Work", &mb,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_mailbox_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 6 + 3 + 1 + 1);
	store_mailbox_list_free(&list, n);
}

/* Issue 15, finding 17: no name a mailbox gets may read as a path that
 * leaves the account's folder once exported to Maildir or a file system. */
static void
test_store_mailbox_path_like_names_refused(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;
	static const char *const bad[] = {
		"..", ".", "../x", "./x", "a/..", "a/.", "a/../b", "a/./b",
		"../../etc", "~", "~root", "~/Mail", "x/\xc2\x85y", "\xc2\x9f",
		"/abs", "a//b", "tab\there",
	};
	static const char *const good[] = {
		"...", ".hidden", "a..b", "a/.b", "x~", "a/~b", "..x",
	};

	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Work",
	    STORE_SPECIAL_NONE, &err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(store_mailbox_create(fx->st, fx->alice,
		    bad[i], STORE_SPECIAL_NONE, &err), -1);
		assert_int_equal(err, STORE_INVALID);
		assert_int_equal(store_mailbox_rename(fx->st, fx->alice,
		    "Work", bad[i], &err), -1);
		assert_int_equal(err, STORE_INVALID);
		/* Not "missing" (APPEND would say TRYCREATE): invalid. */
		assert_int_equal(store_mailbox_get(fx->st, fx->alice, bad[i],
		    &mb, &err), -1);
		assert_int_equal(err, STORE_INVALID);
	}
	mb = mailbox(fx->st, fx->alice, "Work");
	store_mailbox_deinit(&mb);
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		assert_int_equal(store_mailbox_create(fx->st, fx->alice,
		    good[i], STORE_SPECIAL_NONE, &err), 0);
		mb = mailbox(fx->st, fx->alice, good[i]);
		store_mailbox_deinit(&mb);
	}
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Work",
	    "Work..old", &err), 0);
}

static void
test_store_mailbox_delete_then_create_gets_new_uidvalidity(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;
	uint32_t first, second;

	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Projects",
	    STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Projects");
	first = mb.uidvalidity;
	store_mailbox_deinit(&mb);
	deliver_ok(fx->st, fx->alice, "Projects", "p1", 0, NULL);
	deliver_ok(fx->st, fx->alice, "Projects", "p2", 0, NULL);
	assert_int_equal(blob_files(fx->dir), 2);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "projects",
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "Projects",
	    &err), 0);
	assert_int_equal(blob_files(fx->dir), 0);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "Projects", &mb,
	    &err), -1);
	/* Reopen: the counter survives restarts. */
	reopen(fx);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Projects",
	    STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Projects");
	second = mb.uidvalidity;
	assert_true(second > first);
	assert_int_equal(mb.messages, 0);
	assert_int_equal(mb.uidnext, 1);
	store_mailbox_deinit(&mb);
}

static void
test_store_mailbox_delete_inbox_refused(void **state)
{
	struct fx *fx = *state;
	enum store_err err;

	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "INBOX",
	    &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "Inbox",
	    &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
}

static void
test_store_mailbox_delete_keeps_children(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;

	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "A/B",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "A", &err),
	    0);
	mb = mailbox(fx->st, fx->alice, "A/B");
	store_mailbox_deinit(&mb);
}

static void
test_store_mailbox_rename_moves_children(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;
	uint32_t uidvalidity;
	int64_t id;

	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Old/Sub/Deep",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Older",
	    STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Old/Sub");
	id = mb.id;
	uidvalidity = mb.uidvalidity;
	store_mailbox_deinit(&mb);
	deliver_ok(fx->st, fx->alice, "Old/Sub", "kept", 0, NULL);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Old",
	    "New/Place", &err), 0);
	mb = mailbox(fx->st, fx->alice, "New/Place/Sub");
	assert_int_equal(mb.id, id);
	assert_int_equal(mb.uidvalidity, uidvalidity);
	assert_int_equal(mb.messages, 1);
	store_mailbox_deinit(&mb);
	mb = mailbox(fx->st, fx->alice, "New/Place/Sub/Deep");
	store_mailbox_deinit(&mb);
	mb = mailbox(fx->st, fx->alice, "New");
	assert_true(mb.has_children);
	store_mailbox_deinit(&mb);
	/* "Older" only shares a prefix: it stays. */
	mb = mailbox(fx->st, fx->alice, "Older");
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "Old/Sub", &mb,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);

	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Missing",
	    "X", &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Older",
	    "Sent", &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "New",
	    "New/Place/Below", &err), -1);
	assert_int_equal(err, STORE_NOT_ALLOWED);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Older",
	    "inbox", &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Older",
	    "bad//name", &err), -1);
	assert_int_equal(err, STORE_INVALID);
}

static void
test_store_mailbox_rename_inbox_moves_messages(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox inbox, old;
	struct store_msg *changed, *list;
	uint32_t *vanished;
	size_t nchanged, nvanished, n;
	enum store_err err;
	uint32_t u1, u2;

	u1 = deliver_ok(fx->st, fx->alice, NULL, "m1", STORE_FLAG_SEEN, NULL);
	u2 = deliver_ok(fx->st, fx->alice, NULL, "m2", 0, NULL);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "INBOX/child",
	    STORE_SPECIAL_NONE, &err), 0);
	inbox = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "Inbox",
	    "Old Mail", &err), 0);
	old = mailbox(fx->st, fx->alice, "Old Mail");
	assert_int_equal(old.messages, 2);
	assert_int_equal(old.unseen, 1);
	assert_int_equal(old.uidnext, 3);
	assert_int_not_equal(old.uidvalidity, inbox.uidvalidity);
	assert_int_equal(store_msg_list(fx->st, old.id, 1, UINT32_MAX, &list,
	    &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].uid, u1);
	assert_int_equal(list[1].uid, u2);
	store_msg_list_free(&list, n);
	{
		struct store_mailbox now = mailbox(fx->st, fx->alice, "INBOX");

		/* INBOX is empty, same UIDVALIDITY, UIDNEXT unchanged, and
		 * a QRESYNC client learns the UIDs vanished. */
		assert_int_equal(now.messages, 0);
		assert_int_equal(now.unseen, 0);
		assert_int_equal(now.uidvalidity, inbox.uidvalidity);
		assert_int_equal(now.uidnext, 3);
		assert_true(now.highestmodseq > inbox.highestmodseq);
		assert_true(now.has_children);
		store_mailbox_deinit(&now);
	}
	assert_int_equal(store_msg_changes(fx->st, inbox.id,
	    inbox.highestmodseq, &changed, &nchanged, &vanished, &nvanished,
	    NULL, &err), 0);
	assert_int_equal(nchanged, 0);
	assert_int_equal(nvanished, 2);
	assert_int_equal(vanished[0], u1);
	assert_int_equal(vanished[1], u2);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
	/* The child of INBOX stays (RFC 9051 §6.3.6). */
	{
		struct store_mailbox child = mailbox(fx->st, fx->alice,
		    "INBOX/child");

		store_mailbox_deinit(&child);
	}
	/* New mail still lands in INBOX, with a fresh UID. */
	assert_int_equal(deliver_ok(fx->st, fx->alice, NULL, "m3", 0, NULL),
	    3);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	store_mailbox_deinit(&inbox);
	store_mailbox_deinit(&old);
}

static void
test_store_mailbox_subscribe(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;

	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "Junk",
	    false, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Junk");
	assert_false(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "Junk",
	    true, &err), 0);
	mb = mailbox(fx->st, fx->alice, "Junk");
	assert_true(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "Gone",
	    true, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
}

static bool
is_subscription(struct store *st, int64_t account, const char *name)
{
	char **names;
	enum store_err err;
	bool found = false;

	assert_int_equal(store_subscription_list(st, account, &names, &err),
	    0);
	for (char **n = names; *n != NULL; n++)
		found |= strcmp(*n, name) == 0;
	store_strings_free(&names);
	return found;
}

/* NOTIFY's point reads: a mailbox of the account by id (not another
 * account's), and one subscription by name, existing mailbox or not. */
static void
test_store_mailbox_get_id_and_subscription_has(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb = mailbox(fx->st, fx->alice, "Junk"), got;
	enum store_err err;

	assert_int_equal(store_mailbox_get_id(fx->st, fx->alice, mb.id, &got,
	    &err), 0);
	assert_string_equal(got.name, "Junk");
	assert_int_equal(got.uidvalidity, mb.uidvalidity);
	store_mailbox_deinit(&got);
	assert_int_equal(store_mailbox_get_id(fx->st, fx->bob, mb.id, &got,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Project",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_subscription_has(fx->st, fx->alice, "Project",
	    &err), 0);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "Project",
	    true, &err), 0);
	assert_int_equal(store_subscription_has(fx->st, fx->alice, "Project",
	    &err), 1);
	assert_int_equal(store_subscription_has(fx->st, fx->bob, "Project",
	    &err), 0);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "Project",
	    &err), 0);
	assert_int_equal(store_subscription_has(fx->st, fx->alice, "Project",
	    &err), 1);
	assert_int_equal(store_subscription_has(fx->st, fx->alice, "Nope",
	    &err), 0);
}

/* RFC 9051 §6.3.7: a deleted mailbox stays subscribed; RENAME moves the
 * subscriptions of the name and its children; UNSUBSCRIBE works on a
 * name whose mailbox is gone. */
static void
test_store_subscription_outlives_its_mailbox(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;

	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "A/B",
	    STORE_SPECIAL_NONE, &err), 0);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "A/B",
	    true, &err), 0);
	assert_int_equal(store_mailbox_rename(fx->st, fx->alice, "A", "C",
	    &err), 0);
	assert_false(is_subscription(fx->st, fx->alice, "A/B"));
	assert_true(is_subscription(fx->st, fx->alice, "C/B"));
	mb = mailbox(fx->st, fx->alice, "C/B");
	assert_true(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "C/B", &err),
	    0);
	assert_true(is_subscription(fx->st, fx->alice, "C/B"));
	/* A mailbox created again under the name is subscribed. */
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "C/B",
	    STORE_SPECIAL_NONE, &err), 0);
	mb = mailbox(fx->st, fx->alice, "C/B");
	assert_true(mb.is_subscribed);
	store_mailbox_deinit(&mb);
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "C/B", &err),
	    0);
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "C/B",
	    false, &err), 0);
	assert_false(is_subscription(fx->st, fx->alice, "C/B"));
	assert_int_equal(store_mailbox_subscribe(fx->st, fx->alice, "C/B",
	    false, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
}

/* ---- Deliveries ------------------------------------------------------ */

static void
test_store_delivery_many_recipients_stored_once(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result *res;
	struct store_delivery *d;
	struct store_mailbox a, b;
	struct store_msg *list;
	enum store_err err;
	char *m = message("shared", "One body for all.");
	size_t n, nlist;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	/* Written in pieces, as SMTP DATA arrives. */
	assert_int_equal(store_delivery_write(d, m, 10, &err), 0);
	assert_int_equal(store_delivery_write(d, m + 10, strlen(m) - 10,
	    &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_add(d, fx->bob, NULL, STORE_FLAG_FLAGGED, "$Important",
	    1700000000);
	store_delivery_add(d, fx->alice, "Archive", STORE_FLAG_SEEN, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(res[i].err, STORE_OK);
		assert_int_equal(res[i].uid, 1);
	}
	a = mailbox(fx->st, fx->alice, "INBOX");
	b = mailbox(fx->st, fx->bob, "INBOX");
	assert_int_equal(res[0].mailbox, a.id);
	assert_int_equal(res[0].uidvalidity, a.uidvalidity);
	assert_int_equal(res[1].mailbox, b.id);
	assert_int_equal(a.messages, 1);
	assert_int_equal(a.unseen, 1);
	assert_int_equal(a.size, strlen(m));
	assert_int_equal(a.uidnext, 2);
	assert_int_equal(blob_files(fx->dir), 1);
	assert_int_equal(store_msg_list(fx->st, b.id, 1, 1, &list, &nlist,
	    &err), 0);
	assert_int_equal(nlist, 1);
	assert_int_equal(list[0].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(list[0].keywords, "$Important");
	assert_int_equal(list[0].internal_date, 1700000000);
	assert_int_equal(list[0].size, strlen(m));
	assert_int_equal(list[0].retrieved, 0);
	assert_int_equal(list[0].modseq, b.highestmodseq);
	/* Byte-exact body, readable through the blob. */
	{
		char buf[4096];
		int fd = store_blob_open(fx->st, list[0].blob, &err);
		ssize_t got;

		assert_true(fd >= 0);
		got = pread(fd, buf, sizeof(buf), 0);
		assert_int_equal(got, strlen(m));
		assert_memory_equal(buf, m, strlen(m));
		close(fd);
	}
	store_msg_list_free(&list, nlist);
	store_mailbox_deinit(&a);
	store_mailbox_deinit(&b);
	free(res);
	free(m);
}

static void
test_store_delivery_failures_are_per_recipient(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	char *m = message("partial", "x");
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, "No Such Box", 0, NULL, 0);
	store_delivery_add(d, fx->bob, NULL, 0, NULL, 0);
	store_delivery_add(d, 987654, NULL, 0, NULL, 0);
	store_delivery_add(d, fx->alice, "bad//name", 0, NULL, 0);
	store_delivery_add(d, fx->alice, NULL, 0, "bad(keyword", 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(res[0].err, STORE_NOT_FOUND);
	assert_int_equal(res[1].err, STORE_OK);
	assert_int_equal(res[1].uid, 1);
	assert_int_equal(res[2].err, STORE_NOT_FOUND);
	assert_int_equal(res[3].err, STORE_INVALID);
	assert_int_equal(res[4].err, STORE_INVALID);
	free(res);
	assert_int_equal(blob_files(fx->dir), 1);

	/* Nobody takes it: nothing is stored, not even the body. */
	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, "No Such Box", 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_NOT_FOUND);
	free(res);
	assert_int_equal(blob_files(fx->dir), 1);
	free(m);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
}

static void
test_store_delivery_over_quota_fails_that_recipient_only(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result *res;
	struct store_delivery *d;
	struct store_account a;
	enum store_err err;
	char *m = message("quota", "0123456789");
	size_t n, len = strlen(m);

	assert_int_equal(store_account_get_by_id(fx->st, fx->alice, &a, &err),
	    0);
	a.quota_bytes = 2 * len + len / 2;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	deliver_ok(fx->st, fx->alice, NULL, "quota", 0, NULL);
	deliver_ok(fx->st, fx->alice, NULL, "quotb", 0, NULL);

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, len, &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_add(d, fx->bob, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_OVER_QUOTA);
	assert_int_equal(res[1].err, STORE_OK);
	free(res);

	/* Message quota. */
	a.quota_bytes = 0;
	a.quota_messages = 2;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	assert_int_equal(deliver(fx->st, fx->alice, NULL, m, 0, NULL, 0).err,
	    STORE_OVER_QUOTA);
	a.quota_messages = 3;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	assert_int_equal(deliver(fx->st, fx->alice, NULL, m, 0, NULL, 0).err,
	    STORE_OK);
	assert_int_equal(deliver(fx->st, fx->alice, "Sent", m, 0, NULL, 0).err,
	    STORE_OVER_QUOTA);
	{
		struct store_mailbox mb = mailbox(fx->st, fx->alice, "INBOX");

		assert_int_equal(mb.messages, 3);
		store_mailbox_deinit(&mb);
	}
	store_account_deinit(&a);
	free(m);
}

static void
test_store_delivery_abort_leaves_nothing(void **state)
{
	struct fx *fx = *state;
	struct store_delivery *d;
	enum store_err err;
	char path[600];
	DIR *dp;
	struct dirent *de;
	int files = 0;

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, "abc", 3, &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_abort(&d);
	assert_null(d);
	store_delivery_abort(&d);
	snprintf(path, sizeof(path), "%s/tmp", fx->dir);
	dp = opendir(path);
	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL)
		files += de->d_name[0] != '.';
	closedir(dp);
	assert_int_equal(files, 0);
	assert_int_equal(blob_files(fx->dir), 0);
}

static void
test_store_delivery_empty_and_broken_mime_stored_byte_exact(void **state)
{
	struct fx *fx = *state;
	static const char broken[] = "Content-Type: multipart/mixed; "
	    "boundary=zz\r\n\r\n--zz\r\nno end\x00\xff here";
	struct store_delivery_result r;
	struct store_structure s;
	struct store_msg *list;
	struct store_delivery *d;
	struct store_delivery_result *res;
	enum store_err err;
	size_t n;
	char buf[128];
	int fd;

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, broken, sizeof(broken) - 1,
	    &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	r = res[0];
	free(res);
	assert_int_equal(r.err, STORE_OK);
	assert_int_equal(store_msg_list(fx->st, r.mailbox, r.uid, r.uid,
	    &list, &n, &err), 0);
	assert_int_equal(list[0].size, sizeof(broken) - 1);
	fd = store_blob_open(fx->st, list[0].blob, &err);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), sizeof(broken) - 1);
	assert_memory_equal(buf, broken, sizeof(broken) - 1);
	close(fd);
	assert_int_equal(store_blob_structure(fx->st, list[0].blob, &s, &err),
	    0);
	assert_non_null(s.bodystructure);
	store_structure_deinit(&s);
	store_msg_list_free(&list, n);

	/* An empty message is a message too. */
	d = store_delivery_new(fx->st, &err);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_OK);
	assert_int_equal(res[0].uid, 2);
	free(res);
}

static void
test_store_blob_structure_cached_at_delivery(void **state)
{
	struct fx *fx = *state;
	static const char mime[] =
	    "From: Carol <carol@example.net>\r\n"
	    "Subject: parts\r\n"
	    "Date: Tue, 02 Jan 2024 12:00:00 +0100\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b1\r\n"
	    "\r\n"
	    "--b1\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "first\r\n"
	    "--b1\r\n"
	    "Content-Type: text/html\r\n"
	    "\r\n"
	    "<p>second</p>\r\n"
	    "--b1--\r\n";
	struct store_delivery_result r = deliver(fx->st, fx->alice, NULL,
	    mime, 0, NULL, 0);
	struct store_structure s;
	struct store_msg *list;
	enum store_err err;
	size_t n;

	assert_int_equal(r.err, STORE_OK);
	assert_int_equal(store_msg_list(fx->st, r.mailbox, 1, 1, &list, &n,
	    &err), 0);
	assert_int_equal(store_blob_structure(fx->st, list[0].blob, &s, &err),
	    0);
	assert_non_null(strstr(s.envelope, "\"parts\""));
	assert_non_null(strstr(s.bodystructure, "\"mixed\""));
	assert_non_null(s.body);
	assert_int_equal(s.date, 1704193200);
	assert_int_equal(s.nparts, 3);
	assert_string_equal(s.parts[0].section, "");
	assert_int_equal(s.parts[0].header_off, 0);
	assert_int_equal(s.parts[0].end_off, sizeof(mime) - 1);
	assert_string_equal(s.parts[1].section, "1");
	assert_string_equal(s.parts[2].section, "2");
	assert_memory_equal(mime + s.parts[1].body_off, "first",
	    s.parts[1].end_off - s.parts[1].body_off);
	store_structure_deinit(&s);
	assert_int_equal(store_blob_structure(fx->st, 999999, &s, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_blob_open(fx->st, 999999, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_msg_list_free(&list, n);
}

/* Several structures in one read: a blob that is gone leaves its slot
 * empty and the others are filled in order. */
static void
test_store_blob_structures_in_one_read(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result r1 = deliver(fx->st, fx->alice, NULL,
	    "Subject: one\r\n\r\nbody one\r\n", 0, NULL, 0);
	struct store_delivery_result r2 = deliver(fx->st, fx->alice, NULL,
	    "Subject: two\r\n\r\nbody two\r\n", 0, NULL, 0);
	struct store_structure s[3];
	struct store_msg *list;
	bool is_found[3];
	int64_t blobs[3];
	enum store_err err;
	size_t n;

	assert_int_equal(r1.err, STORE_OK);
	assert_int_equal(r2.err, STORE_OK);
	assert_int_equal(store_msg_list(fx->st, r1.mailbox, 1, UINT32_MAX,
	    &list, &n, &err), 0);
	assert_int_equal(n, 2);
	blobs[0] = list[1].blob;
	blobs[1] = 999999;
	blobs[2] = list[0].blob;
	assert_int_equal(store_blob_structures(fx->st, blobs, 3, s, is_found,
	    &err), 0);
	assert_true(is_found[0]);
	assert_false(is_found[1]);
	assert_true(is_found[2]);
	assert_non_null(strstr(s[0].envelope, "\"two\""));
	assert_null(s[1].envelope);
	assert_int_equal(s[1].nparts, 0);
	assert_non_null(strstr(s[2].envelope, "\"one\""));
	for (size_t i = 0; i < 3; i++)
		store_structure_deinit(&s[i]);
	assert_int_equal(store_blob_structures(fx->st, blobs, 0, s, is_found,
	    &err), 0);
	store_msg_list_free(&list, n);
}

/* ---- Listing --------------------------------------------------------- */

static void
test_store_msg_list_ranges(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	struct store_msg *list;
	enum store_err err;
	size_t n;

	for (int i = 0; i < 5; i++)
		deliver_ok(fx->st, fx->alice, NULL, "r", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(store_msg_list(fx->st, mb.id, 2, 4, &list, &n, &err),
	    0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].uid, 2);
	assert_int_equal(list[2].uid, 4);
	assert_true(list[0].modseq < list[1].modseq);
	store_msg_list_free(&list, n);
	assert_int_equal(store_msg_list(fx->st, mb.id, 0, UINT32_MAX, &list,
	    &n, &err), 0);
	assert_int_equal(n, 5);
	store_msg_list_free(&list, n);
	assert_int_equal(store_msg_list(fx->st, mb.id, 6, 100, &list, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_msg_list(fx->st, mb.id, 4, 2, &list, &n, &err),
	    -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_msg_list(fx->st, 987654, 1, 2, &list, &n,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_mailbox_deinit(&mb);
}

/* ---- Flags ----------------------------------------------------------- */

static void
test_store_flags_and_keywords_with_increasing_modseq(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox mb;
	struct store_msg *list;
	enum store_err err;
	uint32_t uids[2];
	uint64_t m0, m1, m2;
	int64_t id;
	size_t n;

	uids[0] = deliver_ok(fx->st, fx->alice, NULL, "f1", 0, NULL);
	uids[1] = deliver_ok(fx->st, fx->alice, NULL, "f2", 0, "Work");
	mb = mailbox(fx->st, fx->alice, "INBOX");
	id = mb.id;
	m0 = mb.highestmodseq;
	assert_int_equal(mb.unseen, 2);
	store_mailbox_deinit(&mb);

	assert_int_equal(flags_commit(fx->st, id, uids, 2, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, "$Label1 work", 0, &r), 0);
	assert_int_equal(r.err, STORE_OK);
	m1 = r.modseq;
	assert_true(m1 > m0);
	store_change_result_deinit(&r);
	assert_int_equal(store_msg_list(fx->st, id, 1, 10, &list, &n, &err),
	    0);
	assert_int_equal(list[0].flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(list[0].keywords, "$Label1 work");
	/* Keywords compare case-insensitively (RFC 9051 §2.3.2). */
	assert_string_equal(list[1].keywords, "Work $Label1");
	assert_int_equal(list[0].modseq, m1);
	assert_int_equal(list[1].modseq, m1);
	store_msg_list_free(&list, n);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(mb.unseen, 0);
	assert_int_equal(mb.highestmodseq, m1);
	store_mailbox_deinit(&mb);

	/* A change that changes nothing keeps the MODSEQ. */
	assert_int_equal(flags_commit(fx->st, id, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, &r), 0);
	assert_int_equal(r.modseq, m1);
	store_change_result_deinit(&r);

	assert_int_equal(flags_commit(fx->st, id, uids + 1, 1,
	    STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, "WORK", 0, &r), 0);
	m2 = r.modseq;
	assert_true(m2 > m1);
	store_change_result_deinit(&r);
	assert_int_equal(flags_commit(fx->st, id, uids, 1,
	    STORE_FLAGS_REPLACE, STORE_FLAG_ANSWERED | 0x100, NULL, 0, &r), 0);
	assert_true(r.modseq > m2);
	store_change_result_deinit(&r);
	assert_int_equal(store_msg_list(fx->st, id, 1, 10, &list, &n, &err),
	    0);
	assert_int_equal(list[0].flags, STORE_FLAG_ANSWERED);
	assert_null(list[0].keywords);
	assert_int_equal(list[1].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(list[1].keywords, "$Label1");
	store_msg_list_free(&list, n);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(mb.unseen, 2);
	store_mailbox_deinit(&mb);

	/* Modseq survives a restart and keeps growing. */
	reopen(fx);
	assert_int_equal(flags_commit(fx->st, id, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_DRAFT, NULL, 0, &r), 0);
	assert_true(r.modseq > m2 + 1);
	store_change_result_deinit(&r);
}

static void
test_store_flags_unchangedsince_reports_modified(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox mb;
	uint32_t uids[3];
	uint64_t before;

	for (int i = 0; i < 3; i++)
		uids[i] = deliver_ok(fx->st, fx->alice, NULL, "c", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	before = mb.highestmodseq;
	/* Someone else flags UID 2 after our snapshot. */
	assert_int_equal(flags_commit(fx->st, mb.id, uids + 1, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL, 0, &r), 0);
	store_change_result_deinit(&r);
	/* RFC 7162 §3.1.3: UID 2 is refused, 1 and 3 are changed. */
	assert_int_equal(flags_commit(fx->st, mb.id, uids, 3, STORE_FLAGS_ADD,
	    STORE_FLAG_DELETED, NULL, before, &r), 0);
	assert_int_equal(r.err, STORE_MODIFIED);
	assert_int_equal(r.nmodified, 1);
	assert_int_equal(r.modified[0], uids[1]);
	store_change_result_deinit(&r);
	{
		struct store_msg *list;
		enum store_err err;
		size_t n;

		assert_int_equal(store_msg_list(fx->st, mb.id, 1, 3, &list,
		    &n, &err), 0);
		assert_int_equal(list[0].flags, STORE_FLAG_DELETED);
		assert_int_equal(list[1].flags, STORE_FLAG_FLAGGED);
		assert_int_equal(list[2].flags, STORE_FLAG_DELETED);
		store_msg_list_free(&list, n);
	}
	store_mailbox_deinit(&mb);
}

static void
test_store_change_errors(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox mb;
	uint32_t zero[] = { 0 }, unsorted[] = { 3, 2 }, dup[] = { 2, 2 };
	uint32_t missing[] = { 40, 41 };

	deliver_ok(fx->st, fx->alice, NULL, "e", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(flags_commit(fx->st, mb.id, zero, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, &r), -1);
	assert_int_equal(r.err, STORE_INVALID);
	store_change_result_deinit(&r);
	assert_int_equal(flags_commit(fx->st, mb.id, unsorted, 2,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &r), -1);
	assert_int_equal(r.err, STORE_INVALID);
	assert_int_equal(flags_commit(fx->st, mb.id, dup, 2, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, &r), -1);
	assert_int_equal(r.err, STORE_INVALID);
	assert_int_equal(flags_commit(fx->st, mb.id, missing, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, "\\Seen", 0, &r), -1);
	assert_int_equal(r.err, STORE_INVALID);
	assert_int_equal(flags_commit(fx->st, 987654, missing, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &r), -1);
	assert_int_equal(r.err, STORE_NOT_FOUND);
	/* UIDs that do not exist are skipped, as for a UID set. */
	assert_int_equal(flags_commit(fx->st, mb.id, missing, 2,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &r), 0);
	assert_int_equal(r.err, STORE_OK);
	assert_int_equal(r.modseq, mb.highestmodseq);
	store_change_result_deinit(&r);
	{
		struct store_change c = {
			.mailbox = mb.id, .uids = missing, .nuids = 1,
			.kind = STORE_CHANGE_COPY, .dst_mailbox = 987654,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), -1);
		assert_int_equal(r.err, STORE_NOT_FOUND);
		store_change_result_deinit(&r);
	}
	store_mailbox_deinit(&mb);
}

/* ---- Expunge, copy, move --------------------------------------------- */

static void
test_store_expunge_reported_as_vanished(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox mb;
	struct store_msg *changed;
	uint32_t *vanished, uids[4], gone[2];
	size_t nchanged, nvanished;
	enum store_err err;
	uint64_t highest = 0, flag_modseq;
	uint64_t since;

	for (int i = 0; i < 4; i++)
		uids[i] = deliver_ok(fx->st, fx->alice, NULL, "x", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	since = mb.highestmodseq;
	gone[0] = uids[1];
	gone[1] = uids[3];
	{
		struct store_change c = {
			.mailbox = mb.id, .uids = gone, .nuids = 2,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		assert_true(r.modseq > since);
		store_change_result_deinit(&r);
	}
	assert_int_equal(flags_commit(fx->st, mb.id, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, &r), 0);
	flag_modseq = r.modseq;
	store_change_result_deinit(&r);
	assert_int_equal(store_msg_changes(fx->st, mb.id, since, &changed,
	    &nchanged, &vanished, &nvanished, &highest, &err), 0);
	assert_int_equal(highest, flag_modseq);
	assert_int_equal(nchanged, 1);
	assert_int_equal(changed[0].uid, uids[0]);
	assert_int_equal(changed[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(nvanished, 2);
	assert_int_equal(vanished[0], uids[1]);
	assert_int_equal(vanished[1], uids[3]);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
	/* From 0: every message is "changed", every expunge reported. */
	assert_int_equal(store_msg_changes(fx->st, mb.id, 0, &changed,
	    &nchanged, &vanished, &nvanished, NULL, &err), 0);
	assert_int_equal(nchanged, 2);
	assert_int_equal(nvanished, 2);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
	assert_int_equal(store_msg_changes(fx->st, 987654, 0, &changed,
	    &nchanged, &vanished, &nvanished, NULL, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(blob_files(fx->dir), 2);
	store_mailbox_deinit(&mb);

	/* UIDNEXT does not go back after expunging the last message, nor
	 * after a restart. */
	reopen(fx);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(mb.uidnext, 5);
	assert_int_equal(mb.messages, 2);
	store_mailbox_deinit(&mb);
	assert_int_equal(deliver_ok(fx->st, fx->alice, NULL, "y", 0, NULL), 5);
}

static void
test_store_copy_gives_copyuid_and_shares_body(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox src, dst;
	struct store_msg *list;
	uint32_t uids[3];
	enum store_err err;
	size_t n;

	uids[0] = deliver_ok(fx->st, fx->alice, NULL, "c1", STORE_FLAG_SEEN,
	    "$Work");
	uids[1] = deliver_ok(fx->st, fx->alice, NULL, "c2", 0, NULL);
	uids[2] = 77;
	deliver_ok(fx->st, fx->alice, "Archive", "pre", 0, NULL);
	src = mailbox(fx->st, fx->alice, "INBOX");
	dst = mailbox(fx->st, fx->alice, "Archive");
	{
		struct store_change c = {
			.mailbox = src.id, .uids = uids, .nuids = 3,
			.kind = STORE_CHANGE_COPY, .dst_mailbox = dst.id,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
	}
	assert_int_equal(r.dst_uidvalidity, dst.uidvalidity);
	assert_int_equal(r.ncopied, 2);
	assert_int_equal(r.src_uids[0], uids[0]);
	assert_int_equal(r.src_uids[1], uids[1]);
	assert_int_equal(r.dst_uids[0], 2);
	assert_int_equal(r.dst_uids[1], 3);
	assert_int_equal(r.modseq, src.highestmodseq);
	store_change_result_deinit(&r);
	assert_int_equal(blob_files(fx->dir), 3);
	assert_int_equal(store_msg_list(fx->st, dst.id, 2, 3, &list, &n, &err),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(list[0].keywords, "$Work");
	assert_true(list[0].modseq > dst.highestmodseq);
	store_msg_list_free(&list, n);
	store_mailbox_deinit(&dst);
	dst = mailbox(fx->st, fx->alice, "Archive");
	assert_int_equal(dst.messages, 3);
	assert_int_equal(dst.unseen, 2);
	assert_int_equal(dst.uidnext, 4);
	/* Expunging the source keeps the copy's body. */
	{
		struct store_change c = {
			.mailbox = src.id, .uids = uids, .nuids = 2,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
	}
	assert_int_equal(blob_files(fx->dir), 3);
	assert_int_equal(store_msg_list(fx->st, dst.id, 2, 2, &list, &n, &err),
	    0);
	{
		int fd = store_blob_open(fx->st, list[0].blob, &err);

		assert_true(fd >= 0);
		close(fd);
	}
	store_msg_list_free(&list, n);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	store_mailbox_deinit(&src);
	store_mailbox_deinit(&dst);
}

static void
test_store_move_expunges_source(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox src, dst;
	struct store_msg *changed;
	uint32_t *vanished, uids[2];
	size_t nchanged, nvanished;
	enum store_err err;

	uids[0] = deliver_ok(fx->st, fx->alice, NULL, "m1", 0, NULL);
	uids[1] = deliver_ok(fx->st, fx->alice, NULL, "m2", 0, NULL);
	src = mailbox(fx->st, fx->alice, "INBOX");
	dst = mailbox(fx->st, fx->alice, "Trash");
	{
		struct store_change c = {
			.mailbox = src.id, .uids = uids + 1, .nuids = 1,
			.kind = STORE_CHANGE_MOVE, .dst_mailbox = dst.id,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
	}
	assert_int_equal(r.ncopied, 1);
	assert_int_equal(r.src_uids[0], uids[1]);
	assert_int_equal(r.dst_uids[0], 1);
	assert_int_equal(r.dst_uidvalidity, dst.uidvalidity);
	assert_true(r.modseq > src.highestmodseq);
	store_change_result_deinit(&r);
	assert_int_equal(store_msg_changes(fx->st, src.id, src.highestmodseq,
	    &changed, &nchanged, &vanished, &nvanished, NULL, &err), 0);
	assert_int_equal(nchanged, 0);
	assert_int_equal(nvanished, 1);
	assert_int_equal(vanished[0], uids[1]);
	store_msg_list_free(&changed, nchanged);
	free(vanished);
	store_mailbox_deinit(&src);
	store_mailbox_deinit(&dst);
	src = mailbox(fx->st, fx->alice, "INBOX");
	dst = mailbox(fx->st, fx->alice, "Trash");
	assert_int_equal(src.messages, 1);
	assert_int_equal(dst.messages, 1);
	assert_int_equal(blob_files(fx->dir), 2);
	/* Within one mailbox a MOVE gives a new UID. */
	{
		struct store_change c = {
			.mailbox = src.id, .uids = uids, .nuids = 1,
			.kind = STORE_CHANGE_MOVE, .dst_mailbox = src.id,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		assert_int_equal(r.dst_uids[0], 3);
		store_change_result_deinit(&r);
	}
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	store_mailbox_deinit(&src);
	store_mailbox_deinit(&dst);
}

static void
test_store_copy_over_quota_copies_nothing(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox src, dst;
	struct store_account a;
	enum store_err err;
	uint32_t uids[2];

	uids[0] = deliver_ok(fx->st, fx->alice, NULL, "q1", 0, NULL);
	uids[1] = deliver_ok(fx->st, fx->alice, NULL, "q2", 0, NULL);
	assert_int_equal(store_account_get_by_id(fx->st, fx->alice, &a, &err),
	    0);
	a.quota_messages = 3;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	src = mailbox(fx->st, fx->alice, "INBOX");
	dst = mailbox(fx->st, fx->alice, "Archive");
	{
		struct store_change c = {
			.mailbox = src.id, .uids = uids, .nuids = 2,
			.kind = STORE_CHANGE_COPY, .dst_mailbox = dst.id,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), -1);
		assert_int_equal(r.err, STORE_OVER_QUOTA);
		assert_int_equal(r.ncopied, 0);
		store_change_result_deinit(&r);
		/* A MOVE within the account uses nothing more. */
		c.kind = STORE_CHANGE_MOVE;
		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		assert_int_equal(r.ncopied, 2);
		store_change_result_deinit(&r);
	}
	store_mailbox_deinit(&dst);
	dst = mailbox(fx->st, fx->alice, "Archive");
	assert_int_equal(dst.messages, 2);
	store_mailbox_deinit(&src);
	store_mailbox_deinit(&dst);
	store_account_deinit(&a);
}

/* ---- App passwords --------------------------------------------------- */

static void
test_store_app_password_add_list_touch_revoke(void **state)
{
	struct fx *fx = *state;
	struct store_app_password *list;
	enum store_err err;
	size_t n;

	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "phone",
	    "$y$j9T$a$b", STORE_APP_IMAP | STORE_APP_SUBMISSION, &err), 0);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "laptop",
	    "$y$j9T$c$d", 0, &err), 0);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "phone",
	    "$y$j9T$e$f", 0, &err), -1);
	assert_int_equal(err, STORE_EXISTS);
	/* Another account may use the same name. */
	assert_int_equal(store_app_password_add(fx->st, fx->bob, "phone",
	    "$y$j9T$g$h", 0, &err), 0);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "",
	    "$y$x", 0, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "bad\nname",
	    "$y$x", 0, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_app_password_add(fx->st, fx->alice, "tv",
	    "$y$x", 1u << 9, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	assert_int_equal(store_app_password_add(fx->st, 987654, "tv", "$y$x",
	    0, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);

	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "laptop");
	assert_string_equal(list[1].name, "phone");
	assert_string_equal(list[1].hash, "$y$j9T$a$b");
	assert_int_equal(list[1].protocols,
	    STORE_APP_IMAP | STORE_APP_SUBMISSION);
	assert_true(list[1].created > 0);
	assert_int_equal(list[1].last_used, 0);
	assert_null(list[1].last_peer);
	assert_int_equal(store_app_password_touch(fx->st, list[1].id,
	    1700000123, "192.0.2.7", &err), 0);
	assert_int_equal(store_app_password_touch(fx->st, 987654, 1, NULL,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_app_password_list_free(&list, n);
	assert_null(list);
	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(list[1].last_used, 1700000123);
	assert_string_equal(list[1].last_peer, "192.0.2.7");
	store_app_password_list_free(&list, n);

	assert_int_equal(store_app_password_revoke(fx->st, fx->alice, "phone",
	    &err), 0);
	assert_int_equal(store_app_password_revoke(fx->st, fx->alice, "phone",
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	store_app_password_list_free(&list, n);
	/* They go with their account. */
	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    0);
	assert_int_equal(store_app_password_list(fx->st, fx->alice, &list, &n,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(db_count(fx, "SELECT count(*) FROM app_passwords"),
	    1);
}

/* ---- The outbound queue's share -------------------------------------- */

static void
test_store_delivery_queue_keeps_body_and_has_one_result(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result *res;
	struct store_change_result r;
	struct store_delivery *d;
	enum store_err err;
	char *m = message("outbound", "to the world");
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_queue(d, "alice@example.org", "Friend@Example.COM",
	    "RET=HDRS ENVID=x1", "NOTIFY=FAILURE");
	store_delivery_queue(d, "alice@example.org", "other@example.net",
	    NULL, NULL);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	/* One result for alice, one shared by the queued recipients. */
	assert_int_equal(n, 2);
	assert_int_equal(res[0].err, STORE_OK);
	assert_int_equal(res[0].uid, 1);
	assert_int_equal(res[1].err, STORE_OK);
	assert_int_equal(res[1].mailbox, 0);
	assert_int_equal(res[1].uid, 0);
	assert_int_equal(db_count(fx, "SELECT count(*) FROM queue WHERE "
	    "rcpt = 'Friend@Example.COM' AND sender = 'alice@example.org' "
	    "AND dsn_envelope = 'RET=HDRS ENVID=x1' "
	    "AND dsn_rcpt = 'NOTIFY=FAILURE'"), 1);
	assert_int_equal(db_count(fx, "SELECT refcount FROM blobs"), 3);
	/* Alice expunges her copy; the queue still holds the body. */
	{
		struct store_mailbox mb = mailbox(fx->st, fx->alice, "INBOX");
		struct store_change c = {
			.mailbox = mb.id, .uids = &res[0].uid, .nuids = 1,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		store_mailbox_deinit(&mb);
	}
	free(res);
	assert_int_equal(blob_files(fx->dir), 1);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);

	/* Queued recipients only, with the null sender: still a result. */
	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_queue(d, "", "bounce@example.net", NULL, NULL);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(res[0].err, STORE_OK);
	free(res);
	assert_int_equal(blob_files(fx->dir), 2);

	/* An envelope that cannot be queued fails the whole delivery. */
	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_queue(d, "a@example.org", "x@y\r\nRCPT TO:<z@w>",
	    NULL, NULL);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(res[0].err, STORE_TEMP);
	assert_int_equal(res[1].err, STORE_TEMP);
	free(res);
	assert_int_equal(blob_files(fx->dir), 2);
	assert_int_equal(db_count(fx, "SELECT count(*) FROM queue"), 3);
	free(m);
}

static void
test_store_delivery_atomic_is_all_or_nothing(void **state)
{
	struct fx *fx = *state;
	struct store_delivery_result *res;
	struct store_delivery *d;
	struct store_account a;
	struct store_mailbox mb;
	enum store_err err;
	char *m = message("atomic", "all or nothing");
	size_t n;

	assert_int_equal(store_account_get_by_id(fx->st, fx->bob, &a, &err),
	    0);
	a.quota_bytes = 10;
	assert_int_equal(store_account_update(fx->st, &a, &err), 0);
	store_account_deinit(&a);

	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_add(d, fx->bob, NULL, 0, NULL, 0);
	store_delivery_queue(d, "x@example.net", "y@example.net", NULL, NULL);
	store_delivery_set_atomic(d);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(res[i].err, STORE_OVER_QUOTA);
	free(res);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(mb.messages, 0);
	assert_int_equal(mb.uidnext, 1);
	store_mailbox_deinit(&mb);
	assert_int_equal(blob_files(fx->dir), 0);
	assert_int_equal(db_count(fx, "SELECT count(*) FROM queue"), 0);

	/* Without it, alice gets hers. */
	d = store_delivery_new(fx->st, &err);
	assert_int_equal(store_delivery_write(d, m, strlen(m), &err), 0);
	store_delivery_add(d, fx->alice, NULL, 0, NULL, 0);
	store_delivery_add(d, fx->bob, NULL, 0, NULL, 0);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(res[0].err, STORE_OK);
	assert_int_equal(res[1].err, STORE_OVER_QUOTA);
	free(res);
	assert_int_equal(store_check(fx->st, false, NULL, NULL), 0);
	free(m);
}

static void
test_store_retrieved_noted_once(void **state)
{
	struct fx *fx = *state;
	struct store_change_result r;
	struct store_mailbox mb;
	struct store_msg *list;
	enum store_err err;
	uint32_t uid;
	size_t n;
	int64_t first;

	uid = deliver_ok(fx->st, fx->alice, NULL, "pop", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	{
		struct store_change c = {
			.mailbox = mb.id, .uids = &uid, .nuids = 1,
			.kind = STORE_CHANGE_RETRIEVED,
		};

		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
		assert_int_equal(store_msg_list(fx->st, mb.id, uid, uid, &list,
		    &n, &err), 0);
		first = list[0].retrieved;
		assert_true(first > 0);
		store_msg_list_free(&list, n);
		assert_int_equal(store_change_commit(fx->st, &c, &r), 0);
		store_change_result_deinit(&r);
	}
	assert_int_equal(store_msg_list(fx->st, mb.id, uid, uid, &list, &n,
	    &err), 0);
	assert_int_equal(list[0].retrieved, first);
	store_msg_list_free(&list, n);
	store_mailbox_deinit(&mb);
}

/* What SORT and THREAD read: the cached numbers, decoded subject,
 * ENVELOPE and ids; and, for a message stored before schema 9 (refs
 * NULL), its In-Reply-To and References read from its header. */
static void
test_store_sort_list_reads_cached_data_and_old_rows(void **state)
{
	struct fx *fx = *state;
	const char *text = "From: Carol <carol@example.net>\r\n"
	    "Subject: =?UTF-8?Q?Re=3A_caf=C3=A9?=\r\n"
	    "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	    "Message-ID: <c@example.net>\r\n"
	    "In-Reply-To: <b@example.net> <x@example.net>\r\n"
	    "References: <a@example.net>\r\n <b@example.net>\r\n"
	    "\r\nbody\r\n";
	struct store_delivery_result r;
	struct store_mailbox mb;
	struct store_sort_msg *list;
	enum store_err err;
	char path[600];
	sqlite3 *db;
	size_t n;

	r = deliver(fx->st, fx->alice, NULL, text, 0, NULL, 1700000000);
	assert_int_equal(r.err, STORE_OK);
	deliver_ok(fx->st, fx->alice, NULL, "plain", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(store_sort_list(fx->st, mb.id, 1, UINT32_MAX,
	    STORE_SORT_SUBJECT | STORE_SORT_ENVELOPE | STORE_SORT_IDS, &list,
	    &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].uid, r.uid);
	assert_int_equal(list[0].internal_date, 1700000000);
	assert_int_equal(list[0].date, 1704103200);
	assert_int_equal(list[0].size, strlen(text));
	assert_string_equal(list[0].subject, "Re: caf\xc3\xa9");
	assert_non_null(strstr(list[0].envelope, "\"carol\""));
	assert_string_equal(list[0].message_id, "c@example.net");
	assert_string_equal(list[0].in_reply_to, "b@example.net");
	assert_string_equal(list[0].references,
	    "a@example.net b@example.net");
	assert_null(list[1].references);
	assert_null(list[1].in_reply_to);
	store_sort_list_free(&list, n);
	/* Only what is asked for is read. */
	assert_int_equal(store_sort_list(fx->st, mb.id, 1, UINT32_MAX, 0,
	    &list, &n, &err), 0);
	assert_null(list[0].subject);
	assert_null(list[0].envelope);
	assert_null(list[0].references);
	store_sort_list_free(&list, n);
	/* A row from before schema 9. */
	store_close(&fx->st);
	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE structures SET "
	    "in_reply_to = NULL, refs = NULL;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	reopen(fx);
	assert_int_equal(store_sort_list(fx->st, mb.id, 1, UINT32_MAX,
	    STORE_SORT_IDS, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].in_reply_to, "b@example.net");
	assert_string_equal(list[0].references,
	    "a@example.net b@example.net");
	assert_null(list[1].references);
	store_sort_list_free(&list, n);
	assert_int_equal(store_sort_list(fx->st, mb.id + 1000, 1, UINT32_MAX,
	    0, &list, &n, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_sort_list(fx->st, mb.id, 5, 4, 0, &list, &n,
	    &err), -1);
	assert_int_equal(err, STORE_INVALID);
	store_mailbox_deinit(&mb);
}

/* ---- \Recent (RFC 3501 §2.3.2) --------------------------------------- */

static void
test_store_recent_claimed_once_peeked_and_counted(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;
	uint32_t first, n;

	deliver_ok(fx->st, fx->alice, NULL, "r1", 0, NULL);
	deliver_ok(fx->st, fx->alice, NULL, "r2", 0, NULL);
	deliver_ok(fx->st, fx->alice, NULL, "r3", 0, NULL);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	/* A new mailbox: every message is unclaimed. */
	assert_int_equal(store_recent_peek(fx->st, mb.id, mb.uidvalidity,
	    &first, &err), 0);
	assert_int_equal(first, 1);
	assert_int_equal(store_recent_count(fx->st, mb.id, mb.uidvalidity, &n,
	    &err), 0);
	assert_int_equal(n, 3);
	/* The first claim takes UIDs 1 and 2, the next only 3, then none. */
	assert_int_equal(store_recent_claim(fx->st, mb.id, mb.uidvalidity, 3,
	    &first, &err), 0);
	assert_int_equal(first, 1);
	assert_int_equal(store_recent_claim(fx->st, mb.id, mb.uidvalidity, 4,
	    &first, &err), 0);
	assert_int_equal(first, 3);
	assert_int_equal(store_recent_claim(fx->st, mb.id, mb.uidvalidity, 4,
	    &first, &err), 0);
	assert_int_equal(first, 4);
	/* A smaller end never takes a claim back. */
	assert_int_equal(store_recent_claim(fx->st, mb.id, mb.uidvalidity, 2,
	    &first, &err), 0);
	assert_int_equal(first, 4);
	assert_int_equal(store_recent_count(fx->st, mb.id, mb.uidvalidity, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	deliver_ok(fx->st, fx->alice, NULL, "r4", 0, NULL);
	assert_int_equal(store_recent_count(fx->st, mb.id, mb.uidvalidity, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	/* Claims are written: a restart keeps them. */
	reopen(fx);
	assert_int_equal(store_recent_peek(fx->st, mb.id, mb.uidvalidity,
	    &first, &err), 0);
	assert_int_equal(first, 4);
	/* Another UIDVALIDITY is another mailbox. */
	assert_int_equal(store_recent_peek(fx->st, mb.id, mb.uidvalidity + 1,
	    &first, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_recent_claim(fx->st, mb.id + 1000, 1, 5, &first,
	    &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	store_mailbox_deinit(&mb);
}

#define RECENT_THREADS 4
#define RECENT_CLAIMS 300

struct recent_run {
	struct store *st;
	int64_t mailbox;
	uint32_t uidvalidity;
	_Atomic int *owners;	/* claims of each UID */
	int failures;
};

static void *
recent_thread(void *arg)
{
	struct recent_run *r = arg;
	enum store_err err;
	uint32_t first;

	for (uint32_t end = 2; end <= RECENT_CLAIMS + 1; end++) {
		if (store_recent_claim(r->st, r->mailbox, r->uidvalidity, end,
		    &first, &err) < 0) {
			r->failures++;
			continue;
		}
		for (uint32_t u = first; u < end; u++)
			r->owners[u]++;
	}
	return NULL;
}

static void
test_store_recent_claims_from_threads_never_overlap(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb = mailbox(fx->st, fx->alice, "Drafts");
	_Atomic int owners[RECENT_CLAIMS + 2] = { 0 };
	struct recent_run runs[RECENT_THREADS];
	pthread_t t[RECENT_THREADS];
	enum store_err err;
	uint32_t first;

	for (size_t i = 0; i < RECENT_THREADS; i++) {
		runs[i] = (struct recent_run){ .st = fx->st,
		    .mailbox = mb.id, .uidvalidity = mb.uidvalidity,
		    .owners = owners };
		assert_int_equal(pthread_create(&t[i], NULL, recent_thread,
		    &runs[i]), 0);
	}
	for (size_t i = 0; i < RECENT_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(runs[i].failures, 0);
	}
	/* Every UID went to exactly one claim. */
	for (uint32_t u = 1; u <= RECENT_CLAIMS; u++)
		assert_int_equal(owners[u], 1);
	reopen(fx);
	assert_int_equal(store_recent_peek(fx->st, mb.id, mb.uidvalidity,
	    &first, &err), 0);
	assert_int_equal(first, RECENT_CLAIMS + 1);
	store_mailbox_deinit(&mb);
}

/* Mailboxes from before schema 14 start with nothing recent. */
static void
test_store_recent_schema_14_migration(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox mb;
	enum store_err err;
	char path[600];
	sqlite3 *db;
	uint32_t first, n;

	deliver_ok(fx->st, fx->alice, NULL, "old1", 0, NULL);
	deliver_ok(fx->st, fx->alice, NULL, "old2", 0, NULL);
	store_close(&fx->st);
	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE mailboxes DROP COLUMN "
	    "recent_uid; UPDATE meta SET value = 13 WHERE key = "
	    "'schema_version';", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	reopen(fx);
	mb = mailbox(fx->st, fx->alice, "INBOX");
	assert_int_equal(store_recent_peek(fx->st, mb.id, mb.uidvalidity,
	    &first, &err), 0);
	assert_int_equal(first, 3);
	assert_int_equal(store_recent_count(fx->st, mb.id, mb.uidvalidity, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	deliver_ok(fx->st, fx->alice, NULL, "new", 0, NULL);
	assert_int_equal(store_recent_count(fx->st, mb.id, mb.uidvalidity, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	store_mailbox_deinit(&mb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_sort_list_reads_cached_data_and_old_rows, setup,
		    teardown),
		cmocka_unit_test(test_store_err_text_and_special_names),
		cmocka_unit_test(test_store_open_refuses_unwritable_dir),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_store_domain_add_list_and_duplicate),
		T(test_store_domain_del_refused_while_accounts_exist),
		T(test_store_account_add_creates_special_use_mailboxes),
		T(test_store_account_add_errors),
		T(test_store_account_get_update_list),
		T(test_store_account_del_removes_mailboxes_and_bodies),
		T(test_store_account_usage_follows_messages),
		T(test_store_alias_add_targets_list_del),
		T(test_store_alias_loop_refused),
		T(test_store_route_resolve_accounts_aliases_catchall),
		T(test_store_route_resolve_stops_at_depth_limit),
		T(test_store_mailbox_create_names_and_parents),
		T(test_store_mailbox_path_like_names_refused),
		T(test_store_mailbox_delete_then_create_gets_new_uidvalidity),
		T(test_store_mailbox_delete_inbox_refused),
		T(test_store_mailbox_delete_keeps_children),
		T(test_store_mailbox_rename_moves_children),
		T(test_store_mailbox_rename_inbox_moves_messages),
		T(test_store_mailbox_subscribe),
		T(test_store_mailbox_get_id_and_subscription_has),
		T(test_store_subscription_outlives_its_mailbox),
		T(test_store_delivery_many_recipients_stored_once),
		T(test_store_delivery_failures_are_per_recipient),
		T(test_store_delivery_over_quota_fails_that_recipient_only),
		T(test_store_delivery_abort_leaves_nothing),
		T(test_store_delivery_empty_and_broken_mime_stored_byte_exact),
		T(test_store_blob_structure_cached_at_delivery),
		T(test_store_blob_structures_in_one_read),
		T(test_store_msg_list_ranges),
		T(test_store_flags_and_keywords_with_increasing_modseq),
		T(test_store_flags_unchangedsince_reports_modified),
		T(test_store_change_errors),
		T(test_store_expunge_reported_as_vanished),
		T(test_store_copy_gives_copyuid_and_shares_body),
		T(test_store_move_expunges_source),
		T(test_store_copy_over_quota_copies_nothing),
		T(test_store_retrieved_noted_once),
		T(test_store_app_password_add_list_touch_revoke),
		T(test_store_delivery_queue_keeps_body_and_has_one_result),
		T(test_store_delivery_atomic_is_all_or_nothing),
		T(test_store_recent_claimed_once_peeked_and_counted),
		T(test_store_recent_claims_from_threads_never_overlap),
		T(test_store_recent_schema_14_migration),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
