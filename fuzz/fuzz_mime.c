/*
 * fuzz_mime: a whole message, parsed once as delivery and APPEND do.
 * fuzz-sources: src/mime/mime.c src/mime/mime_address.c src/mime/mime_field.c
 * fuzz-sources: src/mime/mime_imap.c src/mime/mime_scan.c src/mime/mime_str.c
 * fuzz-sources: src/mime/mime_text.c src/mime/mime_subject.c
 * fuzz-sources: src/mime/mime_thread.c
 * fuzz-packages: gmime-3.0
 *
 * Checked: the parse succeeds; parts[0] is section "" and spans the whole
 * message; every part has header_off <= body_off <= end_off <= len, the
 * line count of its raw body, and (for a message part) a message body
 * inside its body; sections are "" or dot-separated numbers without
 * leading zeros, unique, each inside its parent's body, siblings in order
 * without overlap; ENVELOPE, BODY and BODYSTRUCTURE are each exactly one
 * well-formed IMAP list (quoted strings, literals, atoms, nesting bounded
 * by MIME_MAX_DEPTH); the text is valid UTF-8 within MIME_MAX_TEXT.
 * A new file in src/mime belongs on a fuzz-sources line above.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mime: invariant broken: %s\n", what);
		abort();
	}
}

/* Reads one IMAP value at s[*i]: list, quoted string, literal or atom. */
static bool
imap_value(const char *s, size_t len, size_t *i, unsigned depth)
{
	size_t start;

	if (*i >= len || depth > 4 * MIME_MAX_DEPTH + 8)
		return false;
	switch (s[*i]) {
	case '(':
		(*i)++;
		for (;;) {
			if (*i >= len)
				return false;
			if (s[*i] == ')') {
				(*i)++;
				return true;
			}
			if (s[*i] == ' ')
				(*i)++;
			if (!imap_value(s, len, i, depth + 1))
				return false;
		}
	case '"':
		for ((*i)++; *i < len && s[*i] != '"'; (*i)++) {
			if (s[*i] == '\r' || s[*i] == '\n' ||
			    (unsigned char)s[*i] >= 0x80)
				return false;
			if (s[*i] == '\\') {
				(*i)++;
				if (*i >= len || (s[*i] != '"' &&
				    s[*i] != '\\'))
					return false;
			}
		}
		if (*i >= len)
			return false;
		(*i)++;
		return true;
	case '{': {
		size_t n = 0, digits = 0;

		for ((*i)++; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
			n = n * 10 + (size_t)(s[*i] - '0');
			if (++digits > 12)
				return false;
		}
		if (digits == 0 || len - *i < 3 ||
		    memcmp(s + *i, "}\r\n", 3) != 0)
			return false;
		*i += 3;
		if (len - *i < n)
			return false;
		*i += n;
		return true;
	}
	default:
		start = *i;
		while (*i < len && s[*i] != ' ' && s[*i] != '(' &&
		    s[*i] != ')' && s[*i] != '"' && s[*i] != '{')
			(*i)++;
		return *i > start;
	}
}

static void
check_list(const char *s, const char *what)
{
	size_t i = 0, len;

	check(s != NULL, what);
	len = strlen(s);
	check(len > 0 && s[0] == '(', what);
	check(imap_value(s, len, &i, 0) && i == len, what);
}

static bool
is_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t len, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		else
			return false;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		for (k = 1; k < len; k++) {
			if (i + k >= n || s[i + k] < lo || s[i + k] > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
		i += len;
	}
	return true;
}

static bool
is_section(const char *s)
{
	bool at_start = true;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (at_start)
				return false;
			at_start = true;
		} else if (*s >= '0' && *s <= '9') {
			if (at_start && *s == '0')
				return false;
			at_start = false;
		} else {
			return false;
		}
	}
	return !at_start;
}

/* The length of the parent's section, 0 for a top-level part. */
static size_t
parent_len(const char *section)
{
	const char *dot = strrchr(section, '.');

	return dot != NULL ? (size_t)(dot - section) : 0;
}

static const struct mime_part *
find_part(const struct mime_info *mi, const char *section, size_t n)
{
	size_t i;

	for (i = 0; i < mi->nparts; i++) {
		if (strlen(mi->parts[i].section) == n &&
		    memcmp(mi->parts[i].section, section, n) == 0)
			return &mi->parts[i];
	}
	return NULL;
}

/* The submission check of From: and Sender: (mime_header_mailboxes()):
 * every mailbox found is an addr-spec "local@domain" on one line, at most
 * MIME_MAX_SENDERS of them. */
static void
senders_check(const char *msg, size_t size, const char *name)
{
	char **addrs = NULL;
	size_t nfields = 0, n = 0;

	if (mime_header_mailboxes(msg, size, name, &addrs, &nfields) < 0) {
		check(addrs == NULL, "no addresses on failure");
		return;
	}
	check(addrs != NULL, "an array on success");
	for (; addrs[n] != NULL; n++) {
		const char *at = strrchr(addrs[n], '@');

		check(at != NULL && at != addrs[n] && at[1] != '\0',
		    "mailbox is local@domain");
		check(strpbrk(addrs[n], "\r\n") == NULL,
		    "mailbox on one line");
	}
	check(n <= MIME_MAX_SENDERS, "mailboxes bounded");
	check(n == 0 || nfields > 0, "mailboxes come from fields");
	mime_strings_free(&addrs);
	check(addrs == NULL, "free clears");
}

/* Characters (not bytes) of a UTF-8 string. */
static size_t
preview_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool is_ready;
	const char *msg = (const char *)data;
	struct mime_info mi;
	size_t i, j;

	if (!is_ready) {
		mime_init();
		is_ready = true;
	}
	check(mime_parse(msg, size, &mi) == 0, "parse succeeds");
	check(mi.nparts >= 1 && mi.nparts <= 2 * MIME_MAX_PARTS,
	    "part count");
	check(strcmp(mi.parts[0].section, "") == 0, "parts[0] is \"\"");
	check(mi.parts[0].header_off == 0 && mi.parts[0].end_off == size,
	    "parts[0] spans the message");
	for (i = 0; i < mi.nparts; i++) {
		const struct mime_part *p = &mi.parts[i];
		uint32_t lines = 0;

		check(p->header_off <= p->body_off &&
		    p->body_off <= p->end_off && p->end_off <= size,
		    "offsets in order and within the message");
		for (j = p->body_off; j < p->end_off; j++)
			lines += msg[j] == '\n';
		check(p->lines == lines, "line count of the raw body");
		check(p->content_type != NULL &&
		    strchr(p->content_type, '/') != NULL, "content type");
		check(!(p->is_multipart && p->is_message), "one kind");
		if (p->is_message)
			check(p->body_off <= p->message_body_off &&
			    p->message_body_off <= p->end_off,
			    "message body inside the part");
		if (i == 0)
			continue;
		check(is_section(p->section), "section well-formed");
		check(strlen(p->section) < 8 * MIME_MAX_DEPTH,
		    "section depth bounded");
		for (j = 0; j < i; j++)
			check(strcmp(p->section, mi.parts[j].section) != 0,
			    "sections unique");
		size_t pl = parent_len(p->section);

		if (pl > 0) {
			const struct mime_part *pp = find_part(&mi, p->section,
			    pl);

			check(pp != NULL, "parent section exists");
			check(pp->body_off <= p->header_off &&
			    p->end_off <= pp->end_off,
			    "part inside its parent's body");
		}
		for (j = 1; j < i; j++) {
			const struct mime_part *q = &mi.parts[j];

			if (parent_len(q->section) == pl &&
			    memcmp(q->section, p->section, pl) == 0)
				check(q->end_off <= p->header_off,
				    "siblings in order");
		}
	}
	check_list(mi.envelope, "ENVELOPE well-formed");
	check_list(mi.bodystructure, "BODYSTRUCTURE well-formed");
	check_list(mi.body, "BODY well-formed");
	check(mi.text != NULL && strlen(mi.text) <= MIME_MAX_TEXT,
	    "text bounded");
	check(is_utf8((const unsigned char *)mi.text, strlen(mi.text)),
	    "text is UTF-8");
	check(mi.preview != NULL && is_utf8((const unsigned char *)mi.preview,
	    strlen(mi.preview)), "preview is UTF-8");
	check(preview_chars(mi.preview) <= MIME_MAX_PREVIEW,
	    "preview bounded");
	check(mi.preview[0] != ' ' && (mi.preview[0] == '\0' ||
	    mi.preview[strlen(mi.preview) - 1] != ' ') &&
	    strstr(mi.preview, "  ") == NULL, "preview white space collapsed");
	mime_info_deinit(&mi);
	senders_check(msg, size, "From");
	senders_check(msg, size, "sender");
	return 0;
}
