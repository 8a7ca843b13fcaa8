/*
 * libFuzzer harness for the line reader of lib/parse. The first byte of an
 * input chooses the max line length (1 to 64), the second the buf's cap
 * above it and the sizes of the feeds; the rest is the stream. It is fed in
 * chunks of 0 to 16 bytes into a small buf, read until PARSE_MORE and
 * compacted after each feed, as a session does after each read.
 *
 * Checked: a line returned is shorter than max, holds no LF and lies inside
 * the buf; a full buf always has room again after compaction; and the lines
 * and errors are exactly those of a reference reading of the whole stream
 * at once, whatever the chunk sizes.
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/parse.h"

/* One line or one error of the reference reading. */
struct event {
	bool is_error;
	size_t off;	/* line start in the stream */
	size_t len;	/* line length, line end excluded */
};

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_line_reader: invariant broken: %s\n",
		    what);
		abort();
	}
}

/* Reads the whole stream the way the reader's header describes: a line of
 * more than max bytes, line end included, is one error; so is an
 * unterminated tail of max bytes or more, which no LF can make short. */
static size_t
reference_read(const uint8_t *s, size_t n, size_t max, struct event *ev)
{
	size_t nev = 0, start = 0;

	while (start < n) {
		const uint8_t *lf = memchr(s + start, '\n', n - start);

		if (lf == NULL) {
			if (n - start >= max)
				ev[nev++] = (struct event){ true, start, 0 };
			break;
		}
		size_t total = (size_t)(lf - s) - start + 1;

		if (total > max) {
			ev[nev++] = (struct event){ true, start, 0 };
		} else {
			size_t len = total - 1;

			if (len > 0 && s[start + len - 1] == '\r')
				len--;
			ev[nev++] = (struct event){ false, start, len };
		}
		start += total;
	}
	return nev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;
	struct line_reader r;
	struct event *ev;
	size_t max, cap, n, nev, iev = 0, pos = 0;
	uint32_t rng;

	if (size < 2)
		return 0;
	max = 1 + data[0] % 64;
	cap = max + data[1] % 64;
	rng = data[1] * 2654435761u + 1;
	data += 2;
	size -= 2;

	ev = malloc((size + 1) * sizeof(*ev));
	check(ev != NULL, "memory");
	nev = reference_read(data, size, max, ev);

	buf_init(&b, cap);
	line_reader_init(&r, max);
	for (;;) {
		rng = rng * 1103515245u + 12345u;
		n = (rng >> 16) % 17;
		if (n > size - pos)
			n = size - pos;
		if (n > buf_room(&b))
			n = buf_room(&b);
		check(buf_append(&b, data + pos, n) == 0, "append fits");
		pos += n;
		for (;;) {
			const char *line = NULL;
			size_t len = 0;
			enum parse_rc rc = line_reader_next(&r, &b, &line,
			    &len);

			check(r.off <= b.len, "offset inside the buf");
			if (rc == PARSE_MORE)
				break;
			check(rc == PARSE_DONE || rc == PARSE_ERROR,
			    "known result");
			check(iev < nev, "no more events than the reference");
			check(ev[iev].is_error == (rc == PARSE_ERROR),
			    "same event as the reference");
			if (rc == PARSE_DONE) {
				check(len + 1 <= max, "line within max");
				check(line >= b.data &&
				    line + len < b.data + b.len,
				    "line inside the buf");
				check(memchr(line, '\n', len) == NULL,
				    "no LF in a line");
				check(len == ev[iev].len && memcmp(line,
				    data + ev[iev].off, len) == 0,
				    "same line as the reference");
			}
			iev++;
		}
		line_reader_compact(&r, &b);
		check(r.off == 0, "compact resets the offset");
		if (pos == size)
			break;
		check(buf_room(&b) > 0, "room after compact");
	}
	check(iev == nev, "every reference event seen");
	buf_deinit(&b);
	free(ev);
	return 0;
}
