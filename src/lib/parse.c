#include "lib/parse.h"

#include <string.h>

void
line_reader_init(struct line_reader *r, size_t max)
{
	r->off = 0;
	r->max = max;
	r->is_discarding = false;
}

enum parse_rc
line_reader_next(struct line_reader *r, const struct buf *b,
    const char **line_out, size_t *len_out)
{
	for (;;) {
		size_t avail = b->len - r->off;
		/* b->data is NULL until the first append: no arithmetic on it
		 * then. */
		const char *start = avail ? b->data + r->off : NULL;
		const char *lf = avail ? memchr(start, '\n', avail) : NULL;

		if (r->is_discarding) {
			if (lf == NULL) {
				r->off = b->len;
				return PARSE_MORE;
			}
			r->off += (size_t)(lf - start) + 1;
			r->is_discarding = false;
			continue;
		}
		if (lf == NULL) {
			if (avail >= r->max) {
				r->off = b->len;
				r->is_discarding = true;
				return PARSE_ERROR;
			}
			return PARSE_MORE;
		}
		size_t total = (size_t)(lf - start) + 1;

		if (total > r->max) {
			r->off += total;
			return PARSE_ERROR;
		}
		size_t len = total - 1;

		if (len > 0 && start[len - 1] == '\r')
			len--;
		*line_out = start;
		*len_out = len;
		r->off += total;
		return PARSE_DONE;
	}
}

void
line_reader_compact(struct line_reader *r, struct buf *b)
{
	buf_consume(b, r->off);
	r->off = 0;
}
