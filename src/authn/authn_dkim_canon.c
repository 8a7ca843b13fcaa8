/*
 * authn_dkim_canon: DKIM canonicalization (RFC 6376 §3.4), the one the
 * queue signs with and the verifier checks with, and the tag-list parser
 * (§3.2) of signatures and key records. No hashing here: canonical bytes
 * go to a sink (the caller's SHA-256), in runs, not byte by byte.
 */
#include "authn/authn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* ---- Body (§3.4.3 simple, §3.4.4 relaxed) ---------------------------- */

void
authn_dkim_body_init(struct authn_dkim_body *b, enum authn_dkim_canon c,
    uint64_t limit, authn_dkim_sink sink, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->canon = c;
	b->limit = limit;
	b->sink = sink;
	b->arg = arg;
}

static void
body_flush(struct authn_dkim_body *b)
{
	if (b->buflen > 0)
		b->sink(b->arg, b->buf, b->buflen);
	b->buflen = 0;
}

/* Canonical output: counted whole, given to the sink up to the limit. */
static void
body_emit(struct authn_dkim_body *b, const char *s, size_t n)
{
	uint64_t room = b->length < b->limit ? b->limit - b->length : 0;
	size_t take = room < n ? (size_t)room : n;

	b->length += n;
	while (take > 0) {
		size_t k = sizeof(b->buf) - b->buflen;

		if (k > take)
			k = take;
		memcpy(b->buf + b->buflen, s, k);
		b->buflen += k;
		s += k;
		take -= k;
		if (b->buflen == sizeof(b->buf))
			body_flush(b);
	}
}

/* Before content: the empty lines held back were not at the end after
 * all, and a relaxed whitespace run becomes one space. */
static void
body_pending(struct authn_dkim_body *b)
{
	for (; b->empty_lines > 0; b->empty_lines--)
		body_emit(b, "\r\n", 2);
	if (b->has_wsp)
		body_emit(b, " ", 1);
	b->has_wsp = false;
}

static void
body_eol(struct authn_dkim_body *b)
{
	/* Relaxed: whitespace at the end of a line goes. An empty line
	 * waits, since empty lines at the end of the body go too. */
	b->has_wsp = false;
	if (b->has_content)
		body_emit(b, "\r\n", 2);
	else
		b->empty_lines++;
	b->has_content = false;
}

void
authn_dkim_body_update(struct authn_dkim_body *b, const void *data,
    size_t len)
{
	const char *p = data;
	bool is_relaxed = b->canon == AUTHN_DKIM_RELAXED;

	for (size_t i = 0; i < len;) {
		char c = p[i];
		size_t j;

		if (b->has_cr) {
			b->has_cr = false;
			body_eol(b);
			if (c == '\n') {
				i++;
				continue;
			}
		}
		if (c == '\r') {
			b->has_cr = true;
			i++;
			continue;
		}
		if (c == '\n') {
			body_eol(b);
			i++;
			continue;
		}
		if (is_relaxed && (c == ' ' || c == '\t')) {
			b->has_wsp = true;
			i++;
			continue;
		}
		/* A run of content bytes at once. */
		for (j = i + 1; j < len; j++) {
			c = p[j];
			if (c == '\r' || c == '\n' || (is_relaxed &&
			    (c == ' ' || c == '\t')))
				break;
		}
		body_pending(b);
		body_emit(b, p + i, j - i);
		b->has_content = true;
		i = j;
	}
}

void
authn_dkim_body_final(struct authn_dkim_body *b)
{
	if (b->has_cr) {
		b->has_cr = false;
		body_eol(b);
	}
	/* A body that does not end with CRLF gets one (relaxed drops the
	 * whitespace before it). */
	if (b->has_content)
		body_eol(b);
	/* §3.4.3: an empty body is one CRLF in simple; nothing in relaxed
	 * (§3.4.4, erratum 1384 as implementations read it). */
	if (b->canon == AUTHN_DKIM_SIMPLE && b->length == 0)
		body_emit(b, "\r\n", 2);
	b->empty_lines = 0;
	body_flush(b);
}

/* ---- Header (§3.4.2, relaxed) --------------------------------------- */

char *
authn_dkim_header_relaxed(const char *field, size_t len)
{
	char *out = xmalloc(len + 3);
	size_t o = 0, i = 0;
	bool has_wsp = false, has_value = false;

	/* The name, lowercased, without whitespace before the colon. */
	for (; i < len && field[i] != ':'; i++) {
		if (field[i] != ' ' && field[i] != '\t')
			out[o++] = (char)tolower((unsigned char)field[i]);
	}
	out[o++] = ':';
	if (i < len)
		i++;
	/* The value: unfolded, whitespace runs as one space, none at the
	 * start or the end. Only the start of the value: a colon inside it
	 * keeps the space after it ("Subject: Re: x" is "subject:Re: x";
	 * before 2026-12-07 the queue's signer dropped that space, and
	 * receivers failed such signatures). */
	for (; i < len; i++) {
		char c = field[i];

		if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
			has_wsp = true;
			continue;
		}
		if (has_wsp && has_value)
			out[o++] = ' ';
		has_wsp = false;
		has_value = true;
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

/* ---- Tag lists (§3.2) ------------------------------------------------ */

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
authn_dkim_tags_parse(const char *s, size_t len, struct authn_dkim_tag *tags,
    size_t max, char *err, size_t errlen)
{
	size_t i = 0, n = 0;

	for (;;) {
		struct authn_dkim_tag t;
		size_t end;

		while (i < len && is_fws(s[i]))
			i++;
		if (i == len)
			return (int)n;	/* a last ";" may end the list */
		/* tag-name = ALPHA *ALNUMPUNC */
		if (!isalpha((unsigned char)s[i])) {
			snprintf(err, errlen, "tag list: a tag name must start "
			    "with a letter (byte %zu)", i);
			return -1;
		}
		t.name = s + i;
		while (i < len && (isalnum((unsigned char)s[i]) ||
		    s[i] == '_'))
			i++;
		t.name_len = (size_t)(s + i - t.name);
		if (t.name_len > AUTHN_DKIM_TAG_NAME_MAX) {
			snprintf(err, errlen, "tag list: a tag name longer than "
			    "%d bytes", AUTHN_DKIM_TAG_NAME_MAX);
			return -1;
		}
		while (i < len && is_fws(s[i]))
			i++;
		if (i == len || s[i] != '=') {
			snprintf(err, errlen, "tag list: no '=' after tag "
			    "'%.*s'", (int)t.name_len, t.name);
			return -1;
		}
		i++;
		while (i < len && is_fws(s[i]))
			i++;
		t.value = s + i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];

			if ((c < 0x20 && !is_fws((char)c)) || c == 0x7f) {
				snprintf(err, errlen, "tag list: control "
				    "character in the value of '%.*s'",
				    (int)t.name_len, t.name);
				return -1;
			}
			i++;
		}
		end = i;
		while (end > (size_t)(t.value - s) && is_fws(s[end - 1]))
			end--;
		t.value_len = end - (size_t)(t.value - s);
		for (size_t k = 0; k < n; k++) {
			if (tags[k].name_len == t.name_len &&
			    memcmp(tags[k].name, t.name, t.name_len) == 0) {
				snprintf(err, errlen, "tag list: tag '%.*s' "
				    "twice", (int)t.name_len, t.name);
				return -1;
			}
		}
		if (n == max) {
			snprintf(err, errlen, "tag list: more than %zu tags",
			    max);
			return -1;
		}
		tags[n++] = t;
		if (i < len)
			i++;	/* the ';' */
	}
}

const struct authn_dkim_tag *
authn_dkim_tag_find(const struct authn_dkim_tag *tags, size_t n,
    const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n; i++) {
		if (tags[i].name_len == nl &&
		    memcmp(tags[i].name, name, nl) == 0)
			return &tags[i];
	}
	return NULL;
}
