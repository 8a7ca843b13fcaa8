/*
 * imap_parser_seqset: sequence sets (RFC 9051 §9 sequence-set, RFC 5182
 * "$"), read on demand out of an atom by the handlers of FETCH, STORE,
 * COPY, MOVE, SEARCH and the UID commands.
 */
#include "imap/imap_parser.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define STAR 0		/* "*" while reading; no nz-number is 0 */

/* Reads a seq-number ("*" or nz-number, at most 4294967295) at *sp. */
static int
seq_number(const char **sp, uint32_t *n_out)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s == '*') {
		*sp = s + 1;
		*n_out = STAR;
		return 0;
	}
	/* nz-number = digit-nz *DIGIT: no leading zero. */
	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return -1;
		s++;
	}
	*sp = s;
	*n_out = (uint32_t)n;
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts the ranges and merges those that overlap or touch. */
static void
normalize(struct imap_seqset *set)
{
	size_t i, n = 0;

	if (set->n == 0)
		return;
	qsort(set->ranges, set->n, sizeof(set->ranges[0]), range_cmp);
	for (i = 1; i < set->n; i++) {
		struct imap_seq_range *last = &set->ranges[n];
		const struct imap_seq_range *r = &set->ranges[i];

		if (last->last == UINT32_MAX || r->first <= last->last + 1) {
			if (r->last > last->last)
				last->last = r->last;
		} else {
			set->ranges[++n] = *r;
		}
	}
	set->n = n + 1;
}

int
imap_seqset_parse(const char *atom, size_t max_items,
    struct imap_seqset *out)
{
	const char *s = atom;
	size_t items = 1;

	memset(out, 0, sizeof(*out));
	if (strcmp(atom, "$") == 0) {
		out->is_saved = true;
		return 0;
	}
	/* Counted before memory is taken. */
	for (s = atom; *s != '\0'; s++)
		if (*s == ',' && ++items > max_items)
			return -1;
	if (items > max_items)
		return -1;
	out->ranges = xmalloc((items + 1) * sizeof(out->ranges[0]));
	out->star_min = UINT32_MAX;
	out->star_max = 0;
	s = atom;
	for (;;) {
		uint32_t a, b;

		if (seq_number(&s, &a) < 0)
			goto fail;
		b = a;
		if (*s == ':') {
			s++;
			if (seq_number(&s, &b) < 0)
				goto fail;
		}
		if (a == STAR || b == STAR) {
			uint32_t other = a == STAR ? b : a;

			out->has_star = true;
			if (other != STAR) {
				if (other < out->star_min)
					out->star_min = other;
				if (other > out->star_max)
					out->star_max = other;
			}
		} else {
			/* RFC 9051 §9: "5:1" is the same range as "1:5". */
			out->ranges[out->n].first = a < b ? a : b;
			out->ranges[out->n].last = a < b ? b : a;
			out->n++;
		}
		if (*s == '\0')
			break;
		if (*s != ',')
			goto fail;
		s++;
	}
	normalize(out);
	return 0;
fail:
	imap_seqset_deinit(out);
	return -1;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t star)
{
	uint32_t lo, hi;

	if (!set->has_star)
		return;
	/* "n:*" runs between n and the last message, whichever is larger
	 * (RFC 9051 §9 seq-range: "3291:*" includes the last UID even if it
	 * is below 3291). */
	lo = set->star_min < star ? set->star_min : star;
	hi = set->star_max > star ? set->star_max : star;
	if (lo == 0)
		lo = 1;
	set->has_star = false;
	set->star_min = UINT32_MAX;
	set->star_max = 0;
	if (lo > hi)
		return;
	/* parse left room for this one. */
	set->ranges[set->n].first = lo;
	set->ranges[set->n].last = hi;
	set->n++;
	normalize(set);
}

bool
is_imap_seqset_member(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->n;

	if (set->has_star)
		panic("is_imap_seqset_member: set not resolved");
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].first)
			hi = mid;
		else if (n > set->ranges[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void
imap_seqset_deinit(struct imap_seqset *set)
{
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}
