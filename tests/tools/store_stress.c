/*
 * store_stress: the helper of tests/integration/test_store_crash.py. Not
 * part of postern.
 *
 *   store_stress DATA deliver [THREADS]
 *	Opens the store under DATA (creating example.org and
 *	stress@example.org on first use), prints "READY <uidvalidity>",
 *	then delivers messages from THREADS threads (default 8) until
 *	killed, and after each durable commit prints "ACK <uid> <msgid>".
 *	Between deliveries it flags earlier messages, so that flag changes
 *	are in flight too when the kill comes.
 *   store_stress DATA check
 *	Opens the store (which recovers from the crash), prints
 *	"CHECK <problems>" from store_check, "UIDVALIDITY <n>", and
 *	"MSG <uid> <msgid>" for each INBOX message after reading its body
 *	back and checking that it is whole; "BAD <uid> <why>" if not.
 *
 * An ACK line is written only after store_delivery_commit returned, so
 * every ACK the test reads names a message that must survive.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define BODY_MAX (16 * 1024)

static struct store *st;
static int64_t account;
static int64_t inbox;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void
die(const char *what, enum store_err err)
{
	fprintf(stderr, "store_stress: %s: %s\n", what, store_err_text(err));
	exit(1);
}

static void
setup(void)
{
	struct store_account a = {
		.address = "stress@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	struct store_account got;
	struct store_mailbox mb;
	enum store_err err;

	if (store_domain_add(st, "example.org", &err) < 0 &&
	    err != STORE_EXISTS)
		die("domain", err);
	if (store_account_add(st, &a, &err) < 0 && err != STORE_EXISTS)
		die("account", err);
	if (store_account_get(st, "stress@example.org", &got, &err) < 0)
		die("account_get", err);
	account = got.id;
	store_account_deinit(&got);
	if (store_mailbox_get(st, account, "INBOX", &mb, &err) < 0)
		die("mailbox", err);
	inbox = mb.id;
	printf("READY %" PRIu32 "\n", mb.uidvalidity);
	fflush(stdout);
	store_mailbox_deinit(&mb);
}

/* The message of msgid: its size varies; it ends with "END <msgid>". */
static size_t
message(char *buf, const char *msgid, unsigned *seed)
{
	size_t len, fill = (size_t)rand_r(seed) % (BODY_MAX - 512);

	len = (size_t)snprintf(buf, BODY_MAX, "Message-ID: <%s>\r\n"
	    "Subject: stress %s\r\n\r\n", msgid, msgid);
	for (size_t i = 0; i < fill; i++)
		buf[len++] = (char)('a' + (i * 7 + fill) % 26);
	len += (size_t)snprintf(buf + len, BODY_MAX - len, "\r\nEND %s\r\n",
	    msgid);
	return len;
}

static void *
deliver_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg ^ (unsigned)getpid() ^
	    (unsigned)time(NULL);
	char *buf = malloc(BODY_MAX);
	uint32_t last_uid = 0;

	for (unsigned long n = 0;; n++) {
		struct store_delivery_result *res;
		struct store_delivery *d;
		enum store_err err;
		char msgid[96];
		size_t len, nres;

		snprintf(msgid, sizeof(msgid), "%ld.%lu.%lu.%lu@stress",
		    (long)getpid(), (unsigned long)(uintptr_t)arg, n,
		    (unsigned long)time(NULL));
		len = message(buf, msgid, &seed);
		d = store_delivery_new(st, &err);
		if (d == NULL)
			die("delivery_new", err);
		if (store_delivery_write(d, buf, len, &err) < 0)
			die("delivery_write", err);
		store_delivery_add(d, account, NULL, 0, NULL, 0);
		if (store_delivery_commit(d, &res, &nres) < 0)
			die("delivery_commit", STORE_TEMP);
		if (res[0].err != STORE_OK)
			die("delivery", res[0].err);
		pthread_mutex_lock(&out_lock);
		printf("ACK %" PRIu32 " %s\n", res[0].uid, msgid);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
		last_uid = res[0].uid;
		free(res);
		if (n % 3 == 2) {
			struct store_change_result r;
			struct store_change c = {
				.mailbox = inbox, .uids = &last_uid, .nuids = 1,
				.kind = STORE_CHANGE_FLAGS,
				.mode = STORE_FLAGS_ADD,
				.flags = STORE_FLAG_SEEN,
			};

			if (store_change_commit(st, &c, &r) < 0)
				die("flags", r.err);
			store_change_result_deinit(&r);
		}
	}
	return NULL;
}

static int
deliver(int threads)
{
	pthread_t t;

	setup();
	for (int i = 1; i < threads; i++)
		pthread_create(&t, NULL, deliver_main, (void *)(uintptr_t)i);
	deliver_main((void *)0);
	return 0;
}

/* Reads the body of m and checks it is whole; prints MSG or BAD. */
static void
check_msg(const struct store_msg *m)
{
	char *buf = malloc(m->size + 1), *id, *end, tail[128];
	enum store_err err;
	int fd = store_blob_open(st, m->blob, &err);
	ssize_t got;

	if (fd < 0) {
		printf("BAD %" PRIu32 " open %s\n", m->uid,
		    store_err_text(err));
		free(buf);
		return;
	}
	got = pread(fd, buf, m->size, 0);
	close(fd);
	if (got != (ssize_t)m->size) {
		printf("BAD %" PRIu32 " short read\n", m->uid);
		free(buf);
		return;
	}
	buf[m->size] = '\0';
	if (strncmp(buf, "Message-ID: <", 13) != 0 ||
	    (end = strchr(buf + 13, '>')) == NULL) {
		printf("BAD %" PRIu32 " no message id\n", m->uid);
		free(buf);
		return;
	}
	id = buf + 13;
	*end = '\0';
	snprintf(tail, sizeof(tail), "\r\nEND %s\r\n", id);
	if (m->size < strlen(tail) + (size_t)(end - buf) ||
	    memcmp(buf + m->size - strlen(tail), tail, strlen(tail)) != 0)
		printf("BAD %" PRIu32 " truncated %s\n", m->uid, id);
	else
		printf("MSG %" PRIu32 " %s\n", m->uid, id);
	free(buf);
}

static int
check(void)
{
	struct store_account a;
	struct store_mailbox mb;
	struct store_msg *list;
	enum store_err err;
	size_t n;
	int problems = store_check(st, false, NULL, NULL);

	printf("CHECK %d\n", problems);
	if (store_account_get(st, "stress@example.org", &a, &err) < 0) {
		printf("EMPTY\n");
		return 0;
	}
	if (store_mailbox_get(st, a.id, "INBOX", &mb, &err) < 0)
		die("mailbox", err);
	printf("UIDVALIDITY %" PRIu32 "\nUIDNEXT %" PRIu32 "\n",
	    mb.uidvalidity, mb.uidnext);
	if (store_msg_list(st, mb.id, 1, UINT32_MAX, &list, &n, &err) < 0)
		die("msg_list", err);
	printf("MESSAGES %u %zu\n", mb.messages, n);
	for (size_t i = 0; i < n; i++)
		check_msg(&list[i]);
	store_msg_list_free(&list, n);
	store_mailbox_deinit(&mb);
	store_account_deinit(&a);
	return 0;
}

int
main(int argc, char **argv)
{
	char err[256];
	int rc;

	if (argc < 3 || (strcmp(argv[2], "deliver") != 0 &&
	    strcmp(argv[2], "check") != 0)) {
		fprintf(stderr, "usage: store_stress DATA deliver [THREADS]\n"
		    "       store_stress DATA check\n");
		return 2;
	}
	st = store_open(argv[1], err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "store_stress: %s\n", err);
		return 1;
	}
	if (strcmp(argv[2], "deliver") == 0)
		rc = deliver(argc > 3 ? atoi(argv[3]) : 8);
	else
		rc = check();
	store_close(&st);
	return rc;
}
