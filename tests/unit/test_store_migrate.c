/*
 * Unit tests for the migration map of the store (store.h, Migration map):
 * an entry a delivery carries is committed with its message and names the
 * copy; a recipient that fails leaves no entry; entries are replaced,
 * removed and listed per source folder; folder state is kept; deleting
 * the account drops its map.
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

#include "store/store.h"

#define SRC "imap://bob@mail.example.com:993"

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
	snprintf(fx->dir, sizeof(fx->dir), "%s/storem.XXXXXX", base);
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

static const char body[] = "Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nhello\r\n";

/* Delivers body to mailbox with a map entry for key; returns the result's
 * error and UID. */
static enum store_err
deliver(struct fx *fx, const char *mailbox, const char *key, uint32_t *uid)
{
	struct store_migrate_entry e = {
		.uidvalidity = 77, .key = (char *)key,
		.flags = STORE_FLAG_SEEN, .keywords = "$Work",
		.message_id = "<a@b>", .hash = "00ff", .size = sizeof(body) - 1,
	};
	struct store_delivery_result *res;
	struct store_delivery *d;
	enum store_err err;
	size_t n;

	d = store_delivery_new(fx->st, &err);
	assert_non_null(d);
	assert_int_equal(store_delivery_write(d, body, sizeof(body) - 1, &err),
	    0);
	store_delivery_add(d, fx->alice, mailbox, STORE_FLAG_SEEN, "$Work",
	    1000000000);
	store_delivery_migrate(d, fx->alice, SRC, "INBOX", &e);
	assert_int_equal(store_delivery_commit(d, &res, &n), 0);
	assert_int_equal(n, 1);
	err = res[0].err;
	*uid = res[0].uid;
	free(res);
	return err;
}

static void
test_store_migrate_entry_committed_with_its_message(void **state)
{
	struct fx *fx = *state;
	struct store_migrate_entry *list;
	struct store_mailbox mb;
	enum store_err err;
	uint32_t uid;
	size_t n;

	assert_int_equal(deliver(fx, "INBOX", "42", &uid), STORE_OK);
	assert_int_equal(store_mailbox_get(fx->st, fx->alice, "INBOX", &mb,
	    &err), 0);
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "INBOX",
	    &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].key, "42");
	assert_int_equal(list[0].uidvalidity, 77);
	assert_int_equal(list[0].mailbox, mb.id);
	assert_int_equal(list[0].uid, uid);
	assert_int_equal(list[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(list[0].keywords, "$Work");
	assert_string_equal(list[0].message_id, "<a@b>");
	assert_string_equal(list[0].hash, "00ff");
	store_migrate_list_free(&list, n);
	store_mailbox_deinit(&mb);
	/* Another source or folder sees nothing. */
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "Sent",
	    &list, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void
test_store_migrate_failed_recipient_leaves_no_entry(void **state)
{
	struct fx *fx = *state;
	struct store_migrate_entry *list;
	enum store_err err;
	uint32_t uid;
	size_t n;

	assert_int_equal(deliver(fx, "No such", "43", &uid), STORE_NOT_FOUND);
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "INBOX",
	    &list, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void
test_store_migrate_put_del_and_folder_state(void **state)
{
	struct fx *fx = *state;
	struct store_migrate_entry *list, e = {
		.uidvalidity = 5, .key = "1", .mailbox = 9, .uid = 3,
		.flags = 0, .size = 10,
	};
	enum store_err err;
	uint32_t uidvalidity;
	uint64_t modseq;
	size_t n;

	assert_int_equal(store_migrate_put(fx->st, fx->alice, SRC, "F", &e,
	    &err), 0);
	e.flags = STORE_FLAG_FLAGGED;
	assert_int_equal(store_migrate_put(fx->st, fx->alice, SRC, "F", &e,
	    &err), 0);
	e.key = "2";
	assert_int_equal(store_migrate_put(fx->st, fx->alice, SRC, "F", &e,
	    &err), 0);
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "F",
	    &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].flags, STORE_FLAG_FLAGGED);
	store_migrate_list_free(&list, n);
	assert_int_equal(store_migrate_del(fx->st, fx->alice, SRC, "F", 5, "1",
	    &err), 0);
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "F",
	    &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].key, "2");
	store_migrate_list_free(&list, n);

	assert_int_equal(store_migrate_folder_get(fx->st, fx->alice, SRC, "F",
	    &uidvalidity, &modseq, &err), -1);
	assert_int_equal(err, STORE_NOT_FOUND);
	assert_int_equal(store_migrate_folder_set(fx->st, fx->alice, SRC, "F",
	    5, 1234, &err), 0);
	assert_int_equal(store_migrate_folder_get(fx->st, fx->alice, SRC, "F",
	    &uidvalidity, &modseq, &err), 0);
	assert_int_equal(uidvalidity, 5);
	assert_int_equal(modseq, 1234);

	assert_int_equal(store_account_del(fx->st, "alice@example.org", &err),
	    0);
	assert_int_equal(store_migrate_list(fx->st, fx->alice, SRC, "F",
	    &list, &n, &err), 0);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_migrate_entry_committed_with_its_message,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_migrate_failed_recipient_leaves_no_entry,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_migrate_put_del_and_folder_state,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
