/*
 * archive_dedupe: what makes an import (and a migration) safe to run
 * twice. A message's key is its Message-ID plus the SHA-256 of its body,
 * or the SHA-256 of the whole message when it has no Message-ID (two
 * different short replies without one would otherwise be taken for the
 * same message). Hashes read the message with LF line ends, so that the
 * stored copy (CRLF) and the file it came from (often LF) agree. The keys
 * of a mailbox are a multiset: the n-th copy in the source matches the
 * n-th copy in the mailbox.
 */
#include "archive/archive.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/util.h"

/* The Message-ID field is read up to this many bytes (RFC 5322 §2.1.1:
 * lines of 998). */
#define MSGID_FIELD_MAX 1024

struct archive_key_builder {
	struct archive_eol eol;
	struct auth_sha256 *whole, *body;
	bool is_in_header, is_line_start, is_in_msgid, has_msgid;
	/* Bytes of the header line being read, to recognise field names. */
	char name[16];
	size_t nname;
	char msgid[MSGID_FIELD_MAX];
	size_t nmsgid;
};

struct archive_key_builder *
archive_key_builder_new(void)
{
	struct archive_key_builder *b = xcalloc(1, sizeof(*b));

	archive_eol_init(&b->eol, true);
	b->whole = auth_sha256_new();
	b->is_in_header = true;
	b->is_line_start = true;
	return b;
}

/* One LF-ended byte of the header. */
static void
header_byte(struct archive_key_builder *b, char c)
{
	if (b->is_line_start) {
		b->is_line_start = false;
		b->nname = 0;
		if (c == '\n') {
			b->is_in_header = false;
			if (b->is_in_msgid)
				b->has_msgid = true;
			b->is_in_msgid = false;
			b->body = auth_sha256_new();
			return;
		}
		if (c != ' ' && c != '\t') {
			/* A new field ends the Message-ID's continuation. */
			if (b->is_in_msgid) {
				b->is_in_msgid = false;
				b->has_msgid = true;
			}
		}
	}
	if (c == '\n') {
		b->is_line_start = true;
		return;
	}
	if (b->is_in_msgid) {
		if (b->nmsgid < sizeof(b->msgid))
			b->msgid[b->nmsgid++] = c;
		return;
	}
	if (b->nname < sizeof(b->name))
		b->name[b->nname++] = c;
	if (c == ':' && !b->has_msgid && b->nname == 11 &&
	    strncasecmp(b->name, "Message-ID:", 11) == 0)
		b->is_in_msgid = true;
}

static void
lf_feed(struct archive_key_builder *b, const char *p, size_t n)
{
	size_t i = 0;

	auth_sha256_update(b->whole, p, n);
	while (i < n && b->is_in_header)
		header_byte(b, p[i++]);
	if (i < n)
		auth_sha256_update(b->body, p + i, n - i);
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

/* The id inside the first <...> of the field's value, else the value
 * without surrounding white space. */
static void
msgid_trim(const char *v, size_t n, const char **id_out, size_t *len_out)
{
	const char *lt = memchr(v, '<', n), *gt;

	if (lt != NULL) {
		gt = memchr(lt, '>', n - (size_t)(lt - v));
		if (gt != NULL && gt > lt + 1) {
			*id_out = lt + 1;
			*len_out = (size_t)(gt - lt - 1);
			return;
		}
	}
	while (n > 0 && strchr(" \t\r\n", v[0]) != NULL) {
		v++;
		n--;
	}
	while (n > 0 && strchr(" \t\r\n", v[n - 1]) != NULL)
		n--;
	*id_out = v;
	*len_out = n;
}

void
archive_key_builder_final(struct archive_key_builder **bp,
    struct archive_key *key_out)
{
	struct archive_key_builder *b = *bp;
	unsigned char whole[AUTH_SHA256_LEN], body[AUTH_SHA256_LEN];
	char tmp[2];
	const char *id = NULL;
	size_t idlen = 0;

	lf_feed(b, tmp, archive_eol_finish(&b->eol, tmp));
	if (b->is_in_msgid || b->has_msgid)
		msgid_trim(b->msgid, b->nmsgid, &id, &idlen);
	auth_sha256_final(&b->whole, whole);
	if (b->body == NULL)
		b->body = auth_sha256_new();	/* all header, no body */
	auth_sha256_final(&b->body, body);
	if (idlen > 0) {
		struct auth_sha256 *h = auth_sha256_new();

		auth_sha256_update(h, "M", 1);
		auth_sha256_update(h, id, idlen);
		auth_sha256_update(h, "", 1);
		auth_sha256_update(h, body, sizeof(body));
		auth_sha256_final(&h, key_out->d);
	} else {
		memcpy(key_out->d, whole, sizeof(key_out->d));
	}
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
