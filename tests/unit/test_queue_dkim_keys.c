/*
 * Unit tests for queue_dkim_keys.c: a domain's DKIM key is read from disk
 * once, and again only when `postern dkim generate` replaced a file.
 */
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

#include "net/net.h"
#include "queue/queue.h"
#include "queue/queue_int.h"

/* Writes a new key for domain under dir (a new file renamed into place,
 * as `postern dkim generate` does) and its selector. */
static void
key_write(const char *dir, const char *domain, const char *selector)
{
	char *kpath = queue_dkim_key_path(dir, domain);
	char *spath = queue_dkim_selector_path(dir, domain);
	char tmp[600], err[256], *pub = NULL;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", kpath);
	unlink(tmp);
	assert_int_equal(net_key_generate(NET_KEY_ED25519, tmp, &pub, err,
	    sizeof(err)), 0);
	assert_int_equal(rename(tmp, kpath), 0);
	f = fopen(spath, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", selector);
	fclose(f);
	free(pub);
	free(kpath);
	free(spath);
}

static void
test_dkim_keys_read_once_and_again_after_a_new_key(void **state)
{
	char dir[] = "/tmp/dkimkeys.XXXXXX", sub[600], err[256];
	struct queue_dkim_keys *k;
	const struct net_key *key1, *key2;
	const char *sel;
	char *b64a, *b64b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/dkim", dir);
	mkdir(sub, 0700);
	key_write(dir, "example.test", "s1");
	k = queue_dkim_keys_new(dir);
	key1 = queue_dkim_keys_get(k, "example.test", &sel, err, sizeof(err));
	assert_non_null(key1);
	assert_string_equal(sel, "s1");
	b64a = net_key_public_b64(key1);
	for (int i = 0; i < 100; i++)
		assert_ptr_equal(queue_dkim_keys_get(k, "example.test", &sel,
		    err, sizeof(err)), key1);
	assert_int_equal(queue_dkim_keys_loads(k), 1);
	/* A domain without a key signs nothing and reads no key. */
	assert_null(queue_dkim_keys_get(k, "other.test", &sel, err,
	    sizeof(err)));
	assert_string_equal(sel, "");
	assert_int_equal(queue_dkim_keys_loads(k), 1);
	/* A new key (and selector) is seen at the next message. */
	key_write(dir, "example.test", "s2");
	key2 = queue_dkim_keys_get(k, "example.test", &sel, err, sizeof(err));
	assert_non_null(key2);
	assert_string_equal(sel, "s2");
	b64b = net_key_public_b64(key2);
	assert_string_not_equal(b64a, b64b);
	assert_int_equal(queue_dkim_keys_loads(k), 2);
	free(b64a);
	free(b64b);
	queue_dkim_keys_free(&k);
	assert_null(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_dkim_keys_read_once_and_again_after_a_new_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
