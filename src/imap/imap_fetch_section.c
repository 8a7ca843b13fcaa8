/*
 * imap_fetch_section: where a FETCH section (RFC 9051 §6.4.5, RFC 3516
 * BINARY) lies in a message file and what it sends: the byte range, the
 * filter (header fields, transfer decoding), the length after the filter
 * and the partial window. Parts come from the parts table stored with the
 * message; what the table does not say (a part's Content-Type and
 * Content-Transfer-Encoding, where an embedded message's header ends) is
 * read from the file in bounded chunks. Any thread; no session.
 */
#include "imap/imap_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

/* Bytes of a part's MIME header read for its Content-Type and
 * Content-Transfer-Encoding. */
#define FETCH_MIME_HEADER_MAX (64 * 1024)
/* Longest value kept of those two fields. */
#define FETCH_FIELD_VALUE_MAX 128

/* Reads n bytes at off, retrying short reads. Returns the bytes read
 * (fewer at the end of the file), or -1. */
ssize_t
imap_fetch_read(int fd, char *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static const struct store_part *
part_find(const struct store_structure *st, const uint32_t *parts,
    size_t nparts)
{
	char want[IMAP_SECTION_PARTS_MAX * 11 + 1];
	size_t len = 0;

	want[0] = '\0';
	for (size_t i = 0; i < nparts; i++)
		len += (size_t)sprintf(want + len, "%s%" PRIu32,
		    i > 0 ? "." : "", parts[i]);
	for (size_t i = 0; i < st->nparts; i++)
		if (strcmp(st->parts[i].section, want) == 0)
			return &st->parts[i];
	return NULL;
}

/* Reads the Content-Type and Content-Transfer-Encoding from the header
 * at [start, end) (empty strings when absent). Returns 0, or -1. */
static int
header_fields(const struct imap_fetch_msg *fm, uint64_t start, uint64_t end,
    char type[FETCH_FIELD_VALUE_MAX], char cte[FETCH_FIELD_VALUE_MAX])
{
	uint64_t n = end - start;
	char *hdr;
	ssize_t got;

	if (n > FETCH_MIME_HEADER_MAX)
		n = FETCH_MIME_HEADER_MAX;
	hdr = xmalloc((size_t)n + 1);
	got = imap_fetch_read(fm->fd, hdr, (size_t)n, start);
	if (got < 0) {
		free(hdr);
		return -1;
	}
	if (!imap_fetch_header_value(hdr, (size_t)got, "Content-Type", type,
	    FETCH_FIELD_VALUE_MAX))
		type[0] = '\0';
	if (!imap_fetch_header_value(hdr, (size_t)got,
	    "Content-Transfer-Encoding", cte, FETCH_FIELD_VALUE_MAX))
		cte[0] = '\0';
	free(hdr);
	return 0;
}

/* The Content-Type and Content-Transfer-Encoding of a part, from its MIME
 * header. Returns 0, or -1. */
static int
part_fields(const struct imap_fetch_msg *fm, const struct store_part *p,
    char type[FETCH_FIELD_VALUE_MAX], char cte[FETCH_FIELD_VALUE_MAX])
{
	return header_fields(fm, p->header_off, p->body_off, type, cte);
}

static int
header_end_find(const struct imap_fetch_msg *fm, uint64_t start, uint64_t end,
    uint64_t *out);

/* RFC 2046 §5.1.5: in a multipart/digest, a part without a Content-Type
 * is a message/rfc822. Returns 1 if the part sec names is a child of a
 * digest, 0 if not, -1 when the message cannot be read. */
static int
is_digest_child(const struct imap_fetch_msg *fm,
    const struct imap_fetch_section *sec)
{
	char type[FETCH_FIELD_VALUE_MAX], cte[FETCH_FIELD_VALUE_MAX];
	const struct store_part *parent;

	parent = part_find(fm->st, sec->parts, sec->nparts - 1);
	if (parent == NULL)
		return 0;
	if (part_fields(fm, parent, type, cte) < 0)
		return -1;
	if (strcmp(type, "message/rfc822") == 0 ||
	    strcmp(type, "message/global") == 0) {
		/* RFC 9051 §6.4.5: the parts of a multipart inside a
		 * message/rfc822 part N are N.1, N.2: their container is the
		 * header of the message that part N holds (imaptest's
		 * fetch-body-message-rfc822-mime: 1.1.HEADER of a digest
		 * inside a forwarded message). */
		uint64_t hend;

		if (header_end_find(fm, parent->body_off, parent->end_off,
		    &hend) < 0 ||
		    header_fields(fm, parent->body_off, hend, type, cte) < 0)
			return -1;
	}
	return strcmp(type, "multipart/digest") == 0;
}

/* Where the header of the message that starts at start ends (just past
 * its blank line), or end when it has none. Returns 0, or -1. */
static int
header_end_find(const struct imap_fetch_msg *fm, uint64_t start, uint64_t end,
    uint64_t *hdr_end_out)
{
	int state = 0;
	uint64_t off = start;

	while (off < end) {
		size_t want = end - off > IMAP_FETCH_CHUNK ? IMAP_FETCH_CHUNK :
		    (size_t)(end - off);
		ssize_t got = imap_fetch_read(fm->fd, fm->in, want, off);
		size_t at;

		if (got <= 0)
			return -1;
		at = imap_fetch_header_end(fm->in, (size_t)got, &state);
		if (at != SIZE_MAX) {
			*hdr_end_out = off + at;
			return 0;
		}
		off += (uint64_t)got;
	}
	*hdr_end_out = end;
	return 0;
}

/* Runs the filter over the section once to learn its length, and for
 * BINARY whether it holds NUL. Returns 0, or -1. */
static int
plan_measure(const struct imap_fetch_msg *fm,
    const struct imap_fetch_section *sec, struct imap_fetch_plan *p)
{
	struct imap_filter f;
	uint64_t off = p->start, total = 0;
	bool is_binary = sec->kind != IMAP_FETCH_BODY &&
	    sec->kind != IMAP_FETCH_BODY_PEEK;
	size_t n;

	if (p->filter == IMAP_FILTER_COPY && !is_binary) {
		p->total = p->end - p->start;
		return 0;
	}
	imap_fetch_filter_init(&f, p->filter, sec->fields, sec->nfields);
	while (off < p->end) {
		size_t want = p->end - off > IMAP_FETCH_CHUNK ?
		    IMAP_FETCH_CHUNK : (size_t)(p->end - off);
		ssize_t got = imap_fetch_read(fm->fd, fm->in, want, off);

		if (got <= 0)
			return -1;
		n = imap_fetch_filter_run(&f, fm->in, (size_t)got, fm->out);
		if (is_binary && !p->is_literal8 &&
		    memchr(fm->out, '\0', n) != NULL)
			p->is_literal8 = true;
		total += n;
		off += (uint64_t)got;
	}
	n = imap_fetch_filter_end(&f, fm->out);
	if (is_binary && memchr(fm->out, '\0', n) != NULL)
		p->is_literal8 = true;
	p->total = total + n;
	return 0;
}

/* Plans one section item for message m: which bytes, through which
 * filter, how many. Returns 0; -1 when the message cannot be read; -2
 * for a Content-Transfer-Encoding we cannot undo. */
/* The header and text of the message that section names: the whole
 * message for no part number, else the message inside a message/rfc822
 * (or message/global) part, as RFC 9051 §6.4.5 allows HEADER and TEXT
 * only there. Returns 0, 1 when the part holds no message, or -1. */
static int
message_bounds(const struct imap_fetch_msg *fm,
    const struct imap_fetch_section *sec, const struct store_part *part,
    uint64_t *hstart_out, uint64_t *hend_out, uint64_t *tend_out)
{
	char type[FETCH_FIELD_VALUE_MAX], cte[FETCH_FIELD_VALUE_MAX];
	const struct store_part *top;

	if (part == NULL) {
		/* Part "" of the table says where the header ends. */
		top = part_find(fm->st, NULL, 0);
		*hstart_out = 0;
		*tend_out = fm->size;
		if (top != NULL && top->body_off <= fm->size) {
			*hend_out = top->body_off;
			return 0;
		}
		return header_end_find(fm, 0, fm->size, hend_out);
	}
	if (part_fields(fm, part, type, cte) < 0)
		return -1;
	if (type[0] == '\0') {
		int rc = is_digest_child(fm, sec);

		if (rc < 0)
			return -1;
		if (rc > 0)
			strcpy(type, "message/rfc822");
	}
	if (strcmp(type, "message/rfc822") != 0 &&
	    strcmp(type, "message/global") != 0)
		return 1;
	*hstart_out = part->body_off;
	*tend_out = part->end_off;
	return header_end_find(fm, part->body_off, part->end_off, hend_out);
}

int
imap_fetch_plan(const struct imap_fetch_msg *fm,
    const struct imap_fetch_section *sec, struct imap_fetch_plan *p)
{
	bool is_binary = sec->kind != IMAP_FETCH_BODY &&
	    sec->kind != IMAP_FETCH_BODY_PEEK;
	char type[FETCH_FIELD_VALUE_MAX], cte[FETCH_FIELD_VALUE_MAX];
	const struct store_part *part = NULL;
	uint64_t hstart = 0, hend = 0, tend = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	p->filter = IMAP_FILTER_COPY;
	if (sec->nparts > 0) {
		part = part_find(fm->st, sec->parts, sec->nparts);
		if (part == NULL || part->header_off > part->body_off ||
		    part->body_off > part->end_off ||
		    part->end_off > fm->fd_size) {
			p->is_nil = true;
			goto window;
		}
	}
	if (is_binary && part != NULL) {
		/* RFC 3516 §4.2: the part's content with its encoding
		 * undone. */
		if (part_fields(fm, part, type, cte) < 0)
			return -1;
		if (imap_fetch_filter_cte(cte, &p->filter) < 0)
			return -2;
		p->start = part->body_off;
		p->end = part->end_off;
	} else if (part == NULL && (is_binary ||
	    sec->text == IMAP_SECTION_ALL)) {
		/* BODY[] and BINARY[]: the message as it is. */
		p->start = 0;
		p->end = fm->size;
	} else if (sec->text == IMAP_SECTION_ALL) {
		p->start = part->body_off;
		p->end = part->end_off;
	} else if (sec->text == IMAP_SECTION_MIME) {
		p->start = part->header_off;
		p->end = part->body_off;
	} else {
		rc = message_bounds(fm, sec, part, &hstart, &hend, &tend);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			p->is_nil = true;
			goto window;
		}
		p->start = sec->text == IMAP_SECTION_TEXT ? hend : hstart;
		p->end = sec->text == IMAP_SECTION_TEXT ? tend : hend;
		if (sec->text == IMAP_SECTION_HEADER_FIELDS)
			p->filter = IMAP_FILTER_FIELDS;
		else if (sec->text == IMAP_SECTION_HEADER_FIELDS_NOT)
			p->filter = IMAP_FILTER_FIELDS_NOT;
	}
	if (p->end > fm->fd_size || p->start > p->end)
		return -1;
	if (plan_measure(fm, sec, p) < 0)
		return -1;
window:
	/* RFC 9051 §6.4.5: a partial starting beyond the end is an empty
	 * string. */
	p->len = p->total;
	if (sec->has_partial) {
		p->skip = sec->partial_offset < p->total ?
		    sec->partial_offset : p->total;
		p->len = p->total - p->skip;
		if (p->len > sec->partial_count)
			p->len = sec->partial_count;
	}
	return 0;
}
