/*
 * Unit tests for the store's access control lists (RFC 4314, schema 12):
 * the owner's rights, entries for an account and for anyone, negative
 * entries, the modes of a change, the check of the asking account's "a"
 * right at commit, and that rows go with their mailbox and with the
 * account they name (an account made again under the same address
 * inherits nothing).
 */
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
#include <event2/event.h>
#include <event2/thread.h>

#include "store/store.h"

struct fx {
	char dir[512];
	struct store *st;
	int64_t alice, bob, carol;
	int64_t sales;		/* alice's "Sales" */
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
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
	return a.id;
}

static int64_t
mailbox_id(struct store *st, int64_t account, const char *name)
{
	struct store_mailbox mb;
	enum store_err err;
	int64_t id;

	if (store_mailbox_get(st, account, name, &mb, &err) < 0)
		return 0;
	id = mb.id;
	store_mailbox_deinit(&mb);
	return id;
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
	snprintf(fx->dir, sizeof(fx->dir), "%s/store-acl.XXXXXX", base);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->st = store_open(fx->dir, msg, sizeof(msg));
	if (fx->st == NULL || store_domain_add(fx->st, "example.org", &err) < 0)
		return -1;
	fx->alice = account_add(fx->st, "alice@example.org");
	fx->bob = account_add(fx->st, "bob@example.org");
	fx->carol = account_add(fx->st, "carol@example.org");
	if (store_mailbox_create(fx->st, fx->alice, "Sales", STORE_SPECIAL_NONE,
	    &err) < 0)
		return -1;
	fx->sales = mailbox_id(fx->st, fx->alice, "Sales");
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
set(struct fx *fx, int64_t actor, int64_t grantee, bool is_negative,
    enum store_acl_mode mode, uint32_t rights, int rc_want,
    enum store_err err_want)
{
	struct store_acl_op op = {
		.actor = actor, .mailbox = fx->sales, .grantee = grantee,
		.is_negative = is_negative, .mode = mode, .rights = rights,
	};
	enum store_err err;

	assert_int_equal(store_acl_set(fx->st, &op, &err), rc_want);
	assert_int_equal(err, err_want);
}

static uint32_t
rights_of(struct fx *fx, int64_t account)
{
	enum store_err err;
	uint32_t rights = 0xdead;
	int64_t owner = 0;

	assert_int_equal(store_acl_rights(fx->st, account, fx->sales, &rights,
	    &owner, &err), 0);
	assert_int_equal(owner, fx->alice);
	return rights;
}

static void
test_store_acl_owner_has_all_others_nothing(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(rights_of(fx, fx->alice), STORE_ACL_ALL);
	assert_int_equal(rights_of(fx, fx->bob), 0);
}

static void
test_store_acl_anyone_and_negative_entries(void **state)
{
	struct fx *fx = *state;
	const uint32_t lr = STORE_ACL_LOOKUP | STORE_ACL_READ;
	struct store_acl_entry *list;
	size_t n;
	enum store_err err;

	set(fx, fx->alice, 0, false, STORE_ACL_REPLACE, lr, 0, STORE_OK);
	set(fx, fx->alice, fx->bob, false, STORE_ACL_REPLACE,
	    STORE_ACL_INSERT, 0, STORE_OK);
	/* RFC 4314 §2: the union of bob's and anyone's. */
	assert_int_equal(rights_of(fx, fx->bob), lr | STORE_ACL_INSERT);
	assert_int_equal(rights_of(fx, fx->carol), lr);
	/* Negative rights win over every positive entry. */
	set(fx, fx->alice, fx->bob, true, STORE_ACL_REPLACE, STORE_ACL_READ,
	    0, STORE_OK);
	assert_int_equal(rights_of(fx, fx->bob),
	    STORE_ACL_LOOKUP | STORE_ACL_INSERT);
	set(fx, fx->alice, fx->bob, false, STORE_ACL_ADD, STORE_ACL_WRITE, 0,
	    STORE_OK);
	set(fx, fx->alice, fx->bob, false, STORE_ACL_REMOVE, STORE_ACL_INSERT,
	    0, STORE_OK);
	assert_int_equal(rights_of(fx, fx->bob),
	    STORE_ACL_LOOKUP | STORE_ACL_WRITE);
	assert_int_equal(store_acl_list(fx->st, fx->sales, &list, &n, &err),
	    0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].grantee, 0);
	assert_null(list[0].address);
	assert_string_equal(list[1].address, "bob@example.org");
	assert_false(list[1].is_negative);
	assert_int_equal(list[1].rights, STORE_ACL_WRITE);
	assert_true(list[2].is_negative);
	store_acl_list_free(&list, n);
	/* An entry left without rights goes. */
	set(fx, fx->alice, fx->bob, true, STORE_ACL_DROP, 0, 0, STORE_OK);
	set(fx, fx->alice, fx->bob, false, STORE_ACL_REMOVE, STORE_ACL_ALL, 0,
	    STORE_OK);
	assert_int_equal(store_acl_list(fx->st, fx->sales, &list, &n, &err),
	    0);
	assert_int_equal(n, 1);
	store_acl_list_free(&list, n);
}

static void
test_store_acl_change_needs_admin_right_at_commit(void **state)
{
	struct fx *fx = *state;

	/* bob cannot grant himself anything. */
	set(fx, fx->bob, fx->bob, false, STORE_ACL_REPLACE, STORE_ACL_ALL, -1,
	    STORE_NOT_ALLOWED);
	assert_int_equal(rights_of(fx, fx->bob), 0);
	/* With "a" he can, but never the owner's rights. */
	set(fx, fx->alice, fx->bob, false, STORE_ACL_REPLACE, STORE_ACL_ADMIN |
	    STORE_ACL_LOOKUP, 0, STORE_OK);
	set(fx, fx->bob, fx->carol, false, STORE_ACL_REPLACE, STORE_ACL_READ,
	    0, STORE_OK);
	set(fx, fx->bob, fx->alice, true, STORE_ACL_REPLACE, STORE_ACL_READ,
	    -1, STORE_NOT_ALLOWED);
	assert_int_equal(rights_of(fx, fx->alice), STORE_ACL_ALL);
	/* Once "a" is taken away, his next change fails. */
	set(fx, fx->alice, fx->bob, true, STORE_ACL_REPLACE, STORE_ACL_ADMIN,
	    0, STORE_OK);
	set(fx, fx->bob, fx->carol, false, STORE_ACL_REPLACE, STORE_ACL_ALL,
	    -1, STORE_NOT_ALLOWED);
	assert_int_equal(rights_of(fx, fx->carol), STORE_ACL_READ);
}

static void
test_store_acl_shared_list_shows_what_may_be_looked_up(void **state)
{
	struct fx *fx = *state;
	struct store_acl_shared *list;
	size_t n;
	enum store_err err;

	set(fx, fx->alice, fx->bob, false, STORE_ACL_REPLACE, STORE_ACL_READ,
	    0, STORE_OK);
	assert_int_equal(store_acl_shared_list(fx->st, fx->bob, &list, &n,
	    &err), 0);
	assert_int_equal(n, 0);	/* "r" without "l": not listed */
	store_acl_shared_list_free(&list, n);
	set(fx, fx->alice, 0, false, STORE_ACL_REPLACE, STORE_ACL_LOOKUP, 0,
	    STORE_OK);
	assert_int_equal(store_acl_shared_list(fx->st, fx->bob, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].mb.name, "Sales");
	assert_string_equal(list[0].owner_address, "alice@example.org");
	assert_int_equal(list[0].owner, fx->alice);
	assert_int_equal(list[0].rights, STORE_ACL_READ | STORE_ACL_LOOKUP);
	store_acl_shared_list_free(&list, n);
	/* The owner's own mailboxes are not "shared" with her. */
	assert_int_equal(store_acl_shared_list(fx->st, fx->alice, &list, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	store_acl_shared_list_free(&list, n);
}

static void
test_store_acl_rows_go_with_mailbox_and_account(void **state)
{
	struct fx *fx = *state;
	struct store_acl_entry *list;
	size_t n;
	enum store_err err;
	uint32_t rights;
	int64_t sales;

	set(fx, fx->alice, fx->bob, false, STORE_ACL_REPLACE, STORE_ACL_ALL,
	    0, STORE_OK);
	set(fx, fx->alice, fx->carol, false, STORE_ACL_REPLACE,
	    STORE_ACL_LOOKUP, 0, STORE_OK);
	/* bob goes, and comes back under the same address: nothing. */
	assert_int_equal(store_account_del(fx->st, "bob@example.org", &err),
	    0);
	fx->bob = account_add(fx->st, "bob@example.org");
	assert_int_equal(rights_of(fx, fx->bob), 0);
	assert_int_equal(store_acl_list(fx->st, fx->sales, &list, &n, &err),
	    0);
	assert_int_equal(n, 1);
	store_acl_list_free(&list, n);
	/* The mailbox goes: a new one of the same name starts empty. */
	assert_int_equal(store_mailbox_delete(fx->st, fx->alice, "Sales",
	    &err), 0);
	assert_int_equal(store_acl_rights(fx->st, fx->carol, fx->sales,
	    &rights, NULL, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_mailbox_create(fx->st, fx->alice, "Sales",
	    STORE_SPECIAL_NONE, &err), 0);
	sales = mailbox_id(fx->st, fx->alice, "Sales");
	assert_int_equal(store_acl_list(fx->st, sales, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	store_acl_list_free(&list, n);
	/* The owner's account goes with every row of its mailboxes. */
	fx->sales = sales;
	set(fx, fx->alice, fx->carol, false, STORE_ACL_REPLACE,
	    STORE_ACL_LOOKUP, 0, STORE_OK);
	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    0);
	assert_int_equal(store_acl_shared_list(fx->st, fx->carol,
	    &(struct store_acl_shared *){ NULL }, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void
test_store_acl_refuses_bad_ops(void **state)
{
	struct fx *fx = *state;
	struct store_acl_op op = {
		.mailbox = fx->sales, .grantee = 999999,
		.mode = STORE_ACL_REPLACE, .rights = STORE_ACL_READ,
	};
	enum store_err err;

	/* An account that does not exist. */
	assert_int_equal(store_acl_set(fx->st, &op, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	op.grantee = fx->bob;
	op.rights = 1u << 20;
	assert_int_equal(store_acl_set(fx->st, &op, &err), -1);
	assert_int_equal(err, STORE_INVALID);
	op.rights = STORE_ACL_READ;
	op.mailbox = 999999;
	assert_int_equal(store_acl_set(fx->st, &op, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
}

struct op_done {
	struct event_base *base;
	enum store_err err;
	bool is_done;
};

static void
on_op_done(void *arg, enum store_err err)
{
	struct op_done *d = arg;

	d->err = err;
	d->is_done = true;
	event_base_loopexit(d->base, NULL);
}

static void
keepalive(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* store_mailbox_submit of kind on alice's name (to) asked by actor;
 * returns the writer's answer. */
static enum store_err
mailbox_op(struct fx *fx, int64_t actor, enum store_mailbox_op_kind kind,
    const char *name, const char *to)
{
	struct store_mailbox_op op = {
		.kind = kind, .account = fx->alice, .name = name, .to = to,
		.actor = actor,
	};
	struct op_done d = { 0 };
	struct event *ev;

	d.base = event_base_new();
	assert_non_null(d.base);
	ev = event_new(d.base, -1, EV_PERSIST, keepalive, NULL);
	event_add(ev, &(struct timeval){ 3600, 0 });
	assert_int_equal(store_mailbox_submit(fx->st, &op, d.base, on_op_done,
	    &d), 0);
	while (!d.is_done)
		assert_int_equal(event_base_dispatch(d.base), 0);
	event_free(ev);
	event_base_free(d.base);
	return d.err;
}

/* CREATE, DELETE and RENAME asked by another account are checked by the
 * writer against the rights at commit (RFC 4314 §4), not only by the
 * session before it submits: a right withdrawn in between stops them. */
static void
test_store_acl_mailbox_ops_need_rights_at_commit(void **state)
{
	struct fx *fx = *state;

	set(fx, fx->alice, fx->bob, false, STORE_ACL_REPLACE,
	    STORE_ACL_LOOKUP | STORE_ACL_READ, 0, STORE_OK);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_CREATE,
	    "Sales/Bob", NULL), STORE_NOT_ALLOWED);
	assert_int_equal(mailbox_id(fx->st, fx->alice, "Sales/Bob"), 0);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_DELETE,
	    "Sales", NULL), STORE_NOT_ALLOWED);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_RENAME,
	    "Sales", "Sold"), STORE_NOT_ALLOWED);
	assert_int_equal(mailbox_id(fx->st, fx->alice, "Sales"), fx->sales);
	/* Never a top level, never above a missing parent. */
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_CREATE,
	    "Top", NULL), STORE_NOT_ALLOWED);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_CREATE,
	    "Nope/Child", NULL), STORE_NOT_FOUND);
	assert_int_equal(mailbox_id(fx->st, fx->alice, "Nope"), 0);
	/* With "k" and "x": made, renamed within Sales, deleted. */
	set(fx, fx->alice, fx->bob, false, STORE_ACL_ADD,
	    STORE_ACL_CREATE | STORE_ACL_DELETE, 0, STORE_OK);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_CREATE,
	    "Sales/Bob", NULL), STORE_OK);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_RENAME,
	    "Sales/Bob", "Sales/Robert"), STORE_OK);
	/* "x" on the old name is not "k" on the new parent. */
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_RENAME,
	    "Sales/Robert", "Robert"), STORE_NOT_ALLOWED);
	assert_int_not_equal(mailbox_id(fx->st, fx->alice, "Sales/Robert"), 0);
	/* A negative entry taking "x" away stops the DELETE. */
	set(fx, fx->alice, fx->bob, true, STORE_ACL_REPLACE, STORE_ACL_DELETE,
	    0, STORE_OK);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_DELETE,
	    "Sales", NULL), STORE_NOT_ALLOWED);
	assert_int_equal(mailbox_id(fx->st, fx->alice, "Sales"), fx->sales);
	set(fx, fx->alice, fx->bob, true, STORE_ACL_DROP, 0, 0, STORE_OK);
	assert_int_equal(mailbox_op(fx, fx->bob, STORE_MAILBOX_DELETE,
	    "Sales/Robert", NULL), STORE_OK);
	/* The owner, asking for itself, needs no entry. */
	assert_int_equal(mailbox_op(fx, fx->alice, STORE_MAILBOX_CREATE,
	    "Top", NULL), STORE_OK);
}

int
main(void)
{
	/* The writer calls back on the loop from its own thread. */
	evthread_use_pthreads();
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_store_acl_owner_has_all_others_nothing),
		T(test_store_acl_anyone_and_negative_entries),
		T(test_store_acl_change_needs_admin_right_at_commit),
		T(test_store_acl_shared_list_shows_what_may_be_looked_up),
		T(test_store_acl_rows_go_with_mailbox_and_account),
		T(test_store_acl_refuses_bad_ops),
		T(test_store_acl_mailbox_ops_need_rights_at_commit),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
