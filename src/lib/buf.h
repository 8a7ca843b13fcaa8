/*
 * buf: a growable byte buffer with a hard cap fixed at creation, used for
 * network input. Parsers keep an offset into it and call buf_consume() once
 * per read, so bytes are moved once per read rather than once per line.
 * Not thread-safe: a buf belongs to one session.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;	/* bytes held */
	size_t size;	/* bytes allocated */
	size_t cap;	/* never grows past this */
};

void buf_init(struct buf *b, size_t cap);
void buf_deinit(struct buf *b);

/* Appends n bytes. Returns 0, or -1 (nothing appended) if the cap would be
 * exceeded. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

void buf_clear(struct buf *b);

/* Gives the memory of an empty buf back when it holds more than keep
 * bytes (it grew for one long input), so that an idle connection keeps no
 * more than keep; the next buf_append() allocates again. */
void buf_trim(struct buf *b, size_t keep);

/* Bytes that may still be appended before the cap. */
size_t buf_room(const struct buf *b);

#endif
