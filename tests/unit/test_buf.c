/*
 * Unit tests for lib/buf: the cap is never passed and a refused append
 * leaves the buffer as it was; consume, clear and room; growth over many
 * appends keeps every byte.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"

static void
assert_buf_holds(const struct buf *b, const char *text)
{
	size_t len = strlen(text);

	assert_int_equal(b->len, len);
	assert_true(b->size >= b->len);
	assert_true(b->size <= b->cap);
	if (len > 0)
		assert_memory_equal(b->data, text, len);
}

static void
test_buf_starts_empty_with_full_room(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1000);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 1000);
	assert_int_equal(buf_room(&b), 1000);
	buf_deinit(&b);
}

static void
test_buf_append_keeps_bytes_in_order(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1000);
	assert_int_equal(buf_append(&b, "EHLO ", 5), 0);
	assert_int_equal(buf_append(&b, "mx.example.org\r\n", 16), 0);
	assert_buf_holds(&b, "EHLO mx.example.org\r\n");
	assert_int_equal(buf_room(&b), 1000 - 21);
	buf_deinit(&b);
}

static void
test_buf_append_up_to_cap_exactly_accepted(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_buf_holds(&b, "0123456789");
	assert_int_equal(buf_room(&b), 0);
	buf_deinit(&b);
}

static void
test_buf_append_over_cap_refused_and_appends_nothing(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "abcdef", 6), 0);
	/* 6 + 5 > 10: not even the 4 bytes that would fit go in. */
	assert_int_equal(buf_append(&b, "ghijk", 5), -1);
	assert_buf_holds(&b, "abcdef");
	assert_int_equal(buf_room(&b), 4);
	assert_int_equal(buf_append(&b, "ghij", 4), 0);
	assert_buf_holds(&b, "abcdefghij");
	assert_int_equal(buf_append(&b, "k", 1), -1);
	assert_buf_holds(&b, "abcdefghij");
	buf_deinit(&b);
}

static void
test_buf_append_larger_than_cap_refused_when_empty(void **state)
{
	struct buf b;
	char big[4096];

	(void)state;
	memset(big, 'x', sizeof(big));
	buf_init(&b, 4095);
	assert_int_equal(buf_append(&b, big, sizeof(big)), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_room(&b), 4095);
	assert_int_equal(buf_append(&b, big, sizeof(big) - 1), 0);
	assert_int_equal(b.len, 4095);
	buf_deinit(&b);
}

static void
test_buf_append_of_nothing_accepted_even_when_full(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 3);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_buf_holds(&b, "abc");
	buf_deinit(&b);
}

static void
test_buf_zero_cap_refuses_every_byte(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_room(&b), 0);
	assert_int_equal(buf_append(&b, "a", 1), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	buf_deinit(&b);
}

static void
test_buf_allocation_never_exceeds_cap(void **state)
{
	static const size_t caps[] = { 1, 100, 255, 256, 257, 300, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct buf b;
		size_t n = 0;

		buf_init(&b, caps[i]);
		while (buf_append(&b, "x", 1) == 0) {
			n++;
			assert_true(b.size <= caps[i]);
			assert_true(b.size >= b.len);
		}
		assert_int_equal(n, caps[i]);
		assert_int_equal(b.len, caps[i]);
		assert_int_equal(buf_room(&b), 0);
		buf_deinit(&b);
	}
}

static void
test_buf_grows_across_many_appends_keeping_every_byte(void **state)
{
	struct buf b;
	unsigned char chunk[7];
	size_t total = 0, nallocs = 0, last_size = 0;

	(void)state;
	buf_init(&b, 1 << 20);
	while (buf_room(&b) >= sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (unsigned char)((total + i) % 251);
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
		if (b.size != last_size) {
			nallocs++;
			last_size = b.size;
		}
	}
	assert_int_equal(b.len, total);
	assert_true(total > (1 << 20) - sizeof(chunk));
	for (size_t i = 0; i < total; i++) {
		if ((unsigned char)b.data[i] != i % 251)
			fail_msg("byte %zu is %u, not %zu", i,
			    (unsigned char)b.data[i], i % 251);
	}
	/* Growth doubles: a handful of reallocations, not one per append. */
	assert_true(nallocs <= 16);
	assert_int_equal(b.size, 1 << 20);
	buf_deinit(&b);
}

static void
test_buf_consume_keeps_the_tail(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_append(&b, "hello world", 11), 0);
	buf_consume(&b, 6);
	assert_buf_holds(&b, "world");
	assert_int_equal(buf_room(&b), 95);
	assert_int_equal(buf_append(&b, "!", 1), 0);
	assert_buf_holds(&b, "world!");
	buf_deinit(&b);
}

static void
test_buf_consume_everything_leaves_it_empty(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	buf_consume(&b, 3);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_room(&b), 100);
	buf_consume(&b, 0);
	assert_int_equal(b.len, 0);
	buf_deinit(&b);
}

static void
test_buf_consume_of_nothing_from_unused_buf_harmless(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	buf_consume(&b, 0);
	assert_int_equal(b.len, 0);
	buf_deinit(&b);
	buf_consume(&b, 0);
	assert_int_equal(b.len, 0);
}

static void
test_buf_consume_frees_room_for_a_refused_append(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(buf_append(&b, "9", 1), -1);
	buf_consume(&b, 2);
	assert_int_equal(buf_room(&b), 2);
	assert_int_equal(buf_append(&b, "9a", 2), 0);
	assert_buf_holds(&b, "3456789a");
	buf_deinit(&b);
}

static void
test_buf_consume_past_len_panics(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf b;
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDERR_FILENO);
		buf_init(&b, 10);
		if (buf_append(&b, "abc", 3) == 0)
			buf_consume(&b, 4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void
test_buf_clear_empties_and_restores_room(void **state)
{
	struct buf b;
	size_t size;

	(void)state;
	buf_init(&b, 50);
	assert_int_equal(buf_append(&b, "some bytes", 10), 0);
	size = b.size;
	buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_room(&b), 50);
	/* The allocation stays for the next read. */
	assert_int_equal(b.size, size);
	assert_non_null(b.data);
	assert_int_equal(buf_append(&b, "again", 5), 0);
	assert_buf_holds(&b, "again");
	buf_deinit(&b);
}

static void
test_buf_room_tracks_appends_and_consumes(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 20);
	for (size_t i = 1; i <= 20; i++) {
		assert_int_equal(buf_append(&b, "z", 1), 0);
		assert_int_equal(buf_room(&b), 20 - i);
	}
	for (size_t i = 1; i <= 20; i++) {
		buf_consume(&b, 1);
		assert_int_equal(buf_room(&b), i);
	}
	buf_deinit(&b);
}

static void
test_buf_deinit_frees_and_allows_reuse(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	buf_deinit(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.size, 0);
	assert_int_equal(buf_room(&b), 20);
	assert_int_equal(buf_append(&b, "def", 3), 0);
	assert_buf_holds(&b, "def");
	buf_deinit(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_starts_empty_with_full_room),
		cmocka_unit_test(test_buf_append_keeps_bytes_in_order),
		cmocka_unit_test(test_buf_append_up_to_cap_exactly_accepted),
		cmocka_unit_test(
		    test_buf_append_over_cap_refused_and_appends_nothing),
		cmocka_unit_test(
		    test_buf_append_larger_than_cap_refused_when_empty),
		cmocka_unit_test(
		    test_buf_append_of_nothing_accepted_even_when_full),
		cmocka_unit_test(test_buf_zero_cap_refuses_every_byte),
		cmocka_unit_test(test_buf_allocation_never_exceeds_cap),
		cmocka_unit_test(
		    test_buf_grows_across_many_appends_keeping_every_byte),
		cmocka_unit_test(test_buf_consume_keeps_the_tail),
		cmocka_unit_test(test_buf_consume_everything_leaves_it_empty),
		cmocka_unit_test(
		    test_buf_consume_of_nothing_from_unused_buf_harmless),
		cmocka_unit_test(
		    test_buf_consume_frees_room_for_a_refused_append),
		cmocka_unit_test(test_buf_consume_past_len_panics),
		cmocka_unit_test(test_buf_clear_empties_and_restores_room),
		cmocka_unit_test(test_buf_room_tracks_appends_and_consumes),
		cmocka_unit_test(test_buf_deinit_frees_and_allows_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
