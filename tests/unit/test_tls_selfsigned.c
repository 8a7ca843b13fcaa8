/*
 * Unit tests for net/tls_selfsigned.c: the key and certificate are written
 * only to new files, never through a link planted at their path.
 */
#include <fcntl.h>
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

static void
test_selfsigned_does_not_write_through_a_planted_link(void **state)
{
	char dir[] = "/tmp/selfsigned.XXXXXX";
	char key[512], cert[512], victim[512], err[256];
	const char *names[] = { "mail.example.test" };
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	f = fopen(victim, "w");
	assert_non_null(f);
	fputs("precious\n", f);
	fclose(f);
	assert_int_equal(symlink(victim, key), 0);
	assert_int_equal(tls_selfsigned_write(names, 1, cert, key, err,
	    sizeof(err)), -1);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 9);
	/* Without the link the same call works. */
	assert_int_equal(unlink(key), 0);
	assert_int_equal(tls_selfsigned_write(names, 1, cert, key, err,
	    sizeof(err)), 0);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(key);
	unlink(cert);
	unlink(victim);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_selfsigned_does_not_write_through_a_planted_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
