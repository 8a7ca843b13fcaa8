/*
 * imap_parser_section: FETCH attributes with a section, "BODY[...]<...>"
 * and the BINARY ones (RFC 9051 §6.4.5 and §9 section, RFC 3516 §4.2),
 * read on demand out of the atom the parser built for them.
 */
#include "imap/imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads a number at *sp: without a leading zero if is_nz (nz-number),
 * at most max. */
static int
number(const char **sp, bool is_nz, uint64_t max, uint64_t *n_out)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (!is_digit(*s) || (is_nz && *s == '0'))
		return -1;
	while (is_digit(*s)) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
		s++;
	}
	*sp = s;
	*n_out = n;
	return 0;
}

/* The kind from the name before "[". */
static int
fetch_kind(const char *s, size_t n, enum imap_fetch_kind *kind_out)
{
	static const struct {
		const char *name;
		enum imap_fetch_kind kind;
	} kinds[] = {
		{ "BODY", IMAP_FETCH_BODY },
		{ "BODY.PEEK", IMAP_FETCH_BODY_PEEK },
		{ "BINARY", IMAP_FETCH_BINARY },
		{ "BINARY.PEEK", IMAP_FETCH_BINARY_PEEK },
		{ "BINARY.SIZE", IMAP_FETCH_BINARY_SIZE },
	};
	size_t k;

	for (k = 0; k < ARRAY_LEN(kinds); k++) {
		if (strlen(kinds[k].name) == n &&
		    strncasecmp(s, kinds[k].name, n) == 0) {
			*kind_out = kinds[k].kind;
			return 0;
		}
	}
	return -1;
}

/* header-fld-name = astring; inside a section the parser has already
 * ended the atom form at "]". */
static bool
is_field_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u > 0x20 && u < 0x7f && strchr("(){%*\"\\]", u) == NULL;
}

/* Reads one header field name at *sp: its length unescaped, and a copy
 * into dst when dst is not NULL. */
static int
field_name(const char **sp, char *dst, size_t *len_out)
{
	const char *s = *sp;
	size_t n = 0;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0' || *s == '\r' || *s == '\n')
				return -1;
			if (*s == '\\') {
				s++;
				if (*s != '"' && *s != '\\')
					return -1;
			}
			if (dst != NULL)
				dst[n] = *s;
			n++;
		}
		s++;
	} else {
		for (; is_field_char(*s); s++) {
			if (dst != NULL)
				dst[n] = *s;
			n++;
		}
		if (n == 0)
			return -1;
	}
	if (dst != NULL)
		dst[n] = '\0';
	*sp = s;
	*len_out = n;
	return 0;
}

/* Reads header-list = "(" header-fld-name *(SP header-fld-name) ")" at
 * *sp. With fields NULL it counts the names and their bytes; otherwise it
 * fills fields, copying the names into text. Spaces are forgiven as in
 * the arguments of a command. */
static int
field_list(const char **sp, char **fields, char *text, size_t *n_out,
    size_t *bytes_out)
{
	const char *s = *sp;
	size_t n = 0, bytes = 0;

	if (*s++ != '(')
		return -1;
	for (;;) {
		size_t len;

		while (*s == ' ')
			s++;
		if (*s == ')')
			break;
		if (n > 0 && s[-1] != ' ')
			return -1;
		if (n == IMAP_SECTION_FIELDS_MAX)
			return -1;
		if (field_name(&s, fields != NULL ? text + bytes : NULL,
		    &len) < 0)
			return -1;
		if (fields != NULL)
			fields[n] = text + bytes;
		n++;
		bytes += len + 1;
	}
	if (n == 0)
		return -1;
	*sp = s + 1;
	*n_out = n;
	*bytes_out = bytes;
	return 0;
}

static bool
has_word(const char *s, const char *word)
{
	return strncasecmp(s, word, strlen(word)) == 0;
}

/* Reads section-msgtext or "MIME" (section-text) at *sp, up to "]". */
static int
section_text(const char **sp, struct imap_fetch_section *out)
{
	const char *s = *sp;

	if (has_word(s, "HEADER.FIELDS.NOT ")) {
		out->text = IMAP_SECTION_HEADER_FIELDS_NOT;
		s += strlen("HEADER.FIELDS.NOT ");
	} else if (has_word(s, "HEADER.FIELDS ")) {
		out->text = IMAP_SECTION_HEADER_FIELDS;
		s += strlen("HEADER.FIELDS ");
	} else if (has_word(s, "HEADER]")) {
		out->text = IMAP_SECTION_HEADER;
		s += strlen("HEADER");
	} else if (has_word(s, "TEXT]")) {
		out->text = IMAP_SECTION_TEXT;
		s += strlen("TEXT");
	} else if (has_word(s, "MIME]") && out->nparts > 0) {
		/* RFC 9051 §6.4.5: MIME only follows a part number. */
		out->text = IMAP_SECTION_MIME;
		s += strlen("MIME");
	} else {
		return -1;
	}
	if (out->text == IMAP_SECTION_HEADER_FIELDS ||
	    out->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		const char *list = s;
		size_t n, bytes;
		char *block;

		if (field_list(&s, NULL, NULL, &n, &bytes) < 0)
			return -1;
		/* One block: the pointers, then the names. */
		block = xmalloc(n * sizeof(char *) + bytes);
		out->fields = (char **)block;
		out->nfields = n;
		s = list;
		if (field_list(&s, out->fields, block + n * sizeof(char *),
		    &n, &bytes) < 0)
			panic("imap_fetch_section_parse: list changed");
	}
	*sp = s;
	return 0;
}

int
imap_fetch_section_parse(const char *atom, struct imap_fetch_section *out)
{
	const char *br = strchr(atom, '['), *s;
	bool has_dot = false;
	uint64_t n;

	memset(out, 0, sizeof(*out));
	if (br == NULL || fetch_kind(atom, (size_t)(br - atom), &out->kind) < 0)
		return -1;
	s = br + 1;
	/* section-part = nz-number *("." nz-number) */
	while (is_digit(*s)) {
		if (out->nparts == IMAP_SECTION_PARTS_MAX ||
		    number(&s, true, UINT32_MAX, &n) < 0)
			goto fail;
		out->parts[out->nparts++] = (uint32_t)n;
		has_dot = *s == '.';
		if (!has_dot)
			break;
		s++;
	}
	if (out->kind == IMAP_FETCH_BODY || out->kind == IMAP_FETCH_BODY_PEEK) {
		/* section-spec = section-msgtext /
		 *     (section-part ["." section-text]) */
		if ((has_dot || (out->nparts == 0 && *s != ']')) &&
		    section_text(&s, out) < 0)
			goto fail;
	} else if (has_dot) {
		/* section-binary = "[" [section-part] "]" */
		goto fail;
	}
	if (*s++ != ']')
		goto fail;
	/* partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9); none
	 * for BINARY.SIZE (RFC 3516 §4.2). */
	if (*s == '<' && out->kind != IMAP_FETCH_BINARY_SIZE) {
		s++;
		if (number(&s, false, INT64_MAX, &out->partial_offset) < 0 ||
		    *s++ != '.' ||
		    number(&s, true, INT64_MAX, &out->partial_count) < 0 ||
		    *s++ != '>')
			goto fail;
		out->has_partial = true;
	}
	if (*s != '\0')
		goto fail;
	return 0;
fail:
	imap_fetch_section_deinit(out);
	return -1;
}

void
imap_fetch_section_deinit(struct imap_fetch_section *s)
{
	free(s->fields);
	memset(s, 0, sizeof(*s));
}
