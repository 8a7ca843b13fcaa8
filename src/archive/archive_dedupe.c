/*
 * archive_dedupe: what makes an import safe to run twice. A message's key
 * is the SHA-256 of the whole message, header and body, as the store
 * holds it: line ends read as LF (the stored copy has CRLF, the file it
 * came from often LF), the header fields an mbox import turns into flags
 * and leaves out (Status:, X-Status:, X-Keywords:, X-UID:, X-IMAP:,
 * X-IMAPbase:, Content-Length:, as archive_mbox reads them) and mbox
 * export writes back left out wherever they are, and a message read as
 * ending with a line end and, when it is all header, a blank line (mbox
 * export adds both). Two messages that differ in any other byte are
 * different messages: the Message-ID is not trusted on its own (a
 * placeholder like "<>" is common, and whoever puts a message into the
 * mailbox first would otherwise decide which later one gets skipped).
 * The keys of a mailbox are a multiset: the n-th copy in the source
 * matches the n-th copy in the mailbox.
 */
#include "archive/archive.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/util.h"

/* Room for the longest hidden field name and its colon. */
#define NAME_MAX_LEN 16

struct archive_key_builder {
	struct archive_eol eol;
	struct auth_sha256 *h;
	bool is_in_header, is_line_start;
	/* The line is a field whose name is still being read (held in
	 * name[], not hashed yet). */
	bool is_naming;
	/* The field being read (and its continuation lines) is hidden. */
	bool is_hidden;
	char name[NAME_MAX_LEN];
	size_t nname;
	char last;		/* the last byte hashed, 0 before any */
	/* Header bytes waiting to be hashed, to hash in runs. */
	char out[256];
	size_t nout;
};

struct archive_key_builder *
archive_key_builder_new(void)
{
	struct archive_key_builder *b = xcalloc(1, sizeof(*b));

	archive_eol_init(&b->eol, true);
	b->h = auth_sha256_new();
	b->is_in_header = true;
	b->is_line_start = true;
	return b;
}

static void
out_flush(struct archive_key_builder *b)
{
	auth_sha256_update(b->h, b->out, b->nout);
	b->nout = 0;
}

static void
out_put(struct archive_key_builder *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b->nout == sizeof(b->out))
			out_flush(b);
		b->out[b->nout++] = p[i];
	}
	if (n > 0)
		b->last = p[n - 1];
}

/* Whether name (with its colon) is a field the mbox import hides. */
static bool
is_hidden_name(const char *name, size_t n)
{
	static const char *const hidden[] = {
		"Status:", "X-Status:", "X-Keywords:", "X-UID:", "X-IMAP:",
		"X-IMAPbase:", "Content-Length:",
	};

	for (size_t i = 0; i < ARRAY_LEN(hidden); i++) {
		if (strlen(hidden[i]) == n &&
		    strncasecmp(name, hidden[i], n) == 0)
			return true;
	}
	return false;
}

/* The name read so far is not a hidden field's: it is hashed. */
static void
name_flush(struct archive_key_builder *b)
{
	out_put(b, b->name, b->nname);
	b->nname = 0;
	b->is_naming = false;
}

/* One LF-ended byte of the header. */
static void
header_byte(struct archive_key_builder *b, char c)
{
	if (b->is_line_start) {
		b->is_line_start = false;
		if (c == '\n') {
			/* The blank line: the body follows. */
			b->is_in_header = false;
			b->is_hidden = false;
			out_put(b, &c, 1);
			out_flush(b);
			return;
		}
		if (c != ' ' && c != '\t') {
			/* A new field (a continuation line keeps the
			 * field's is_hidden). */
			b->is_hidden = false;
			b->is_naming = true;
			b->nname = 0;
		}
	}
	if (b->is_naming) {
		b->name[b->nname++] = c;
		if (c == ':' && is_hidden_name(b->name, b->nname)) {
			b->is_hidden = true;
			b->is_naming = false;
			b->nname = 0;
		} else if (c == ':' || c == '\n' ||
		    b->nname == sizeof(b->name)) {
			name_flush(b);
		}
	} else if (!b->is_hidden) {
		out_put(b, &c, 1);
	}
	if (c == '\n')
		b->is_line_start = true;
}

static void
lf_feed(struct archive_key_builder *b, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && b->is_in_header)
		header_byte(b, p[i++]);
	if (i < n) {
		auth_sha256_update(b->h, p + i, n - i);
		b->last = p[n - 1];
	}
}

void
archive_key_builder_feed(struct archive_key_builder *b, const char *data,
    size_t n)
{
	char tmp[2 * 8192 + 1];

	while (n > 0) {
		size_t k = n < 8192 ? n : 8192;

		lf_feed(b, tmp, archive_eol_feed(&b->eol, data, k, tmp));
		data += k;
		n -= k;
	}
}

void
archive_key_builder_final(struct archive_key_builder **bp,
    struct archive_key *key_out)
{
	struct archive_key_builder *b = *bp;
	char tmp[2];

	lf_feed(b, tmp, archive_eol_finish(&b->eol, tmp));
	if (b->is_naming)
		name_flush(b);
	/* Read as ending with a line end, and a header without its blank
	 * line as having one: mbox export writes both. */
	if (b->last != '\n')
		out_put(b, "\n", 1);
	if (b->is_in_header)
		out_put(b, "\n", 1);
	out_flush(b);
	auth_sha256_final(&b->h, key_out->d);
	free(b);
	*bp = NULL;
}

void
archive_key_of(const char *data, size_t n, struct archive_key *key_out)
{
	struct archive_key_builder *b = archive_key_builder_new();

	archive_key_builder_feed(b, data, n);
	archive_key_builder_final(&b, key_out);
}

/* ---- The multiset ----------------------------------------------------- */

struct slot {
	struct archive_key key;
	uint32_t count;		/* 0: free */
};

struct archive_dedupe {
	struct slot *slots;
	size_t cap;		/* a power of two */
	size_t used;
};

struct archive_dedupe *
archive_dedupe_new(void)
{
	struct archive_dedupe *d = xcalloc(1, sizeof(*d));

	d->cap = 256;
	d->slots = xcalloc(d->cap, sizeof(*d->slots));
	return d;
}

void
archive_dedupe_free(struct archive_dedupe **dp)
{
	if (*dp == NULL)
		return;
	free((*dp)->slots);
	free(*dp);
	*dp = NULL;
}

/* The slot of key, or the free slot where it would go. Slots are never
 * emptied (a count that falls to zero keeps its key as 0 copies), so a
 * probe stops at the first never-used slot. */
static struct slot *
slot_find(struct slot *slots, size_t cap, const struct archive_key *key,
    bool *is_found_out)
{
	size_t i;

	memcpy(&i, key->d, sizeof(i));
	for (;; i++) {
		struct slot *s = &slots[i & (cap - 1)];

		if (s->count == 0 && memcmp(&s->key, &(struct archive_key){0},
		    sizeof(s->key)) == 0) {
			*is_found_out = false;
			return s;
		}
		if (memcmp(&s->key, key, sizeof(*key)) == 0) {
			*is_found_out = true;
			return s;
		}
	}
}

void
archive_dedupe_add(struct archive_dedupe *d, const struct archive_key *key)
{
	bool is_found;
	struct slot *s;

	if (2 * (d->used + 1) > d->cap) {
		size_t cap = d->cap * 2;
		struct slot *slots = xcalloc(cap, sizeof(*slots));

		for (size_t i = 0; i < d->cap; i++) {
			if (memcmp(&d->slots[i].key, &(struct archive_key){0},
			    sizeof(struct archive_key)) == 0 &&
			    d->slots[i].count == 0)
				continue;
			*slot_find(slots, cap, &d->slots[i].key, &is_found) =
			    d->slots[i];
		}
		free(d->slots);
		d->slots = slots;
		d->cap = cap;
	}
	s = slot_find(d->slots, d->cap, key, &is_found);
	if (!is_found) {
		s->key = *key;
		d->used++;
	}
	if (s->count < UINT32_MAX)
		s->count++;
}

bool
archive_dedupe_take(struct archive_dedupe *d, const struct archive_key *key)
{
	bool is_found;
	struct slot *s = slot_find(d->slots, d->cap, key, &is_found);

	if (!is_found || s->count == 0)
		return false;
	s->count--;
	return true;
}

int
archive_dedupe_load(struct archive_dedupe *d, struct store *st,
    int64_t mailbox, enum store_err *err_out)
{
	struct store_msg *msgs = NULL;
	size_t n = 0;
	char *buf;

	if (store_msg_list(st, mailbox, 1, UINT32_MAX, &msgs, &n,
	    err_out) < 0)
		return -1;
	buf = xmalloc(1u << 16);
	for (size_t i = 0; i < n; i++) {
		struct archive_key_builder *b;
		struct archive_key key;
		enum store_err err;
		int fd = store_blob_open(st, msgs[i].blob, &err);
		ssize_t got;

		if (fd < 0) {
			if (err == STORE_NOT_FOUND)
				continue;	/* expunged meanwhile */
			*err_out = err;
			free(buf);
			store_msg_list_free(&msgs, n);
			return -1;
		}
		b = archive_key_builder_new();
		while ((got = read(fd, buf, 1u << 16)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				break;
			archive_key_builder_feed(b, buf, (size_t)got);
		}
		close(fd);
		archive_key_builder_final(&b, &key);
		if (got < 0) {
			*err_out = STORE_TEMP;
			free(buf);
			store_msg_list_free(&msgs, n);
			return -1;
		}
		archive_dedupe_add(d, &key);
	}
	free(buf);
	store_msg_list_free(&msgs, n);
	*err_out = STORE_OK;
	return 0;
}
