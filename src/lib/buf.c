#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void
buf_init(struct buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->size = 0;
	b->cap = cap;
}

void
buf_deinit(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->size = 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	size_t want;

	if (n > b->cap - b->len)
		return -1;
	want = b->len + n;
	if (want > b->size) {
		size_t size = b->size ? b->size : 256;

		while (size < want)
			size *= 2;
		if (size > b->cap)
			size = b->cap;
		b->data = xrealloc(b->data, size);
		b->size = size;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		panic("buf_consume: %zu > %zu", n, b->len);
	/* A buf that never held a byte has no data; memmove() must not see
	 * that NULL, even for zero bytes. */
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void
buf_clear(struct buf *b)
{
	b->len = 0;
}

void
buf_trim(struct buf *b, size_t keep)
{
	if (b->len != 0 || b->size <= keep)
		return;
	free(b->data);
	b->data = NULL;
	b->size = 0;
}

size_t
buf_room(const struct buf *b)
{
	return b->cap - b->len;
}
