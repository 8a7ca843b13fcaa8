/*
 * milter_proto: the milter protocol's packets and replies, and the header
 * model that end-of-message changes apply to. Pure functions over bytes,
 * no I/O: what a milter sends is parsed and bounded here before anything
 * acts on it (fuzz/fuzz_milter.c). Packet layout from libmilter's
 * mfdef.h and Postfix's milter8.c: a 4-byte length in network order
 * counting the command byte and the data that follow.
 */
#include "milter/milter_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* A line of a milter's SMTP reply, at most (RFC 5321 §4.5.3.1.5). */
#define MILTER_REPLY_LINE 512

int
milter_packet_length(const unsigned char hdr[4], size_t max,
    uint32_t *len_out)
{
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > max)
		return -1;
	*len_out = n;
	return 0;
}

enum parse_rc
milter_packet_split(const char *data, size_t len, char *cmd_out,
    const char **payload_out, size_t *plen_out, size_t *used_out)
{
	uint32_t n;

	if (len < 4)
		return PARSE_MORE;
	if (milter_packet_length((const unsigned char *)data,
	    MILTER_MAX_PACKET, &n) < 0)
		return PARSE_ERROR;
	if (len - 4 < n)
		return PARSE_MORE;
	*cmd_out = data[4];
	*payload_out = data + 5;
	*plen_out = n - 1;
	*used_out = 4 + (size_t)n;
	return PARSE_DONE;
}

void
milter_packet_append(struct buf *out, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)(len + 1));

	if (buf_append(out, &n, 4) < 0 || buf_append(out, &cmd, 1) < 0 ||
	    (len > 0 && buf_append(out, data, len) < 0))
		panic("milter: packet over its buffer");
}

static uint32_t
word_get(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	    (uint32_t)u[2] << 8 | u[3];
}

bool
is_milter_field_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return false;
	for (const char *c = name; *c != '\0'; c++) {
		if (*c <= ' ' || *c >= 0x7f || *c == ':')
			return false;
	}
	return true;
}

/* "name\0value\0" at p (len bytes): the value may hold no NUL; what
 * follows its NUL is ignored, as libmilter sends nothing there. */
static int
name_value_parse(const char *p, size_t len, struct milter_reply *r)
{
	const char *nul = memchr(p, '\0', len), *vnul;

	if (nul == NULL)
		return -1;
	r->name = p;
	r->value = nul + 1;
	vnul = memchr(r->value, '\0', len - (size_t)(r->value - p));
	if (vnul == NULL)
		return -1;
	r->value_len = (size_t)(vnul - r->value);
	return is_milter_field_name_ok(r->name) ? 0 : -1;
}

int
milter_reply_parse(char cmd, const char *payload, size_t len,
    struct milter_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->cmd = cmd;
	switch (cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_PROGRESS:
	case SMFIR_SKIP:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		return 0;
	case SMFIC_OPTNEG:
		/* A symbol list may follow (SMFIR_SETSYMLIST's macros):
		 * we send our own set, so it is not read. */
		if (len < 12)
			return -1;
		r->version = word_get(payload);
		r->actions = word_get(payload + 4);
		r->protocol = word_get(payload + 8);
		return 0;
	case SMFIR_REPLYCODE:
	case SMFIR_QUARANTINE:
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_CHGFROM:
	case SMFIR_ADDRCPT_PAR:
		if (len == 0 || memchr(payload, '\0', len) == NULL)
			return -1;
		r->name = payload;
		return 0;
	case SMFIR_REPLBODY:
		r->data = payload;
		r->data_len = len;
		return 0;
	case SMFIR_ADDHEADER:
		return name_value_parse(payload, len, r);
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (len < 4)
			return -1;
		r->index = word_get(payload);
		return name_value_parse(payload + 4, len - 4, r);
	default:
		return -1;
	}
}

int
milter_replycode_clean(const char *text, size_t len, char *out,
    size_t out_size)
{
	char code[4];
	size_t o = 0, i = 0;
	int kind;

	if (out_size < MILTER_REPLY_LINE + 1)
		return -1;
	if (len < 3 || (text[0] != '4' && text[0] != '5') ||
	    text[1] < '0' || text[1] > '9' || text[2] < '0' ||
	    text[2] > '9' || (len > 3 && text[3] != ' ' && text[3] != '-' &&
	    text[3] != '\r' && text[3] != '\n'))
		return -1;
	memcpy(code, text, 3);
	code[3] = '\0';
	if (strcmp(code, "421") == 0)
		memcpy(code, "451", 3);
	kind = code[0] - '0';
	while (i < len) {
		size_t end = i, next, start;
		char line[MILTER_REPLY_LINE];
		size_t ln = 0;
		bool is_last;

		while (end < len && text[end] != '\r' && text[end] != '\n')
			end++;
		next = end;
		if (next < len && text[next] == '\r')
			next++;
		if (next < len && text[next] == '\n')
			next++;
		while (next < len && (text[next] == '\r' ||
		    text[next] == '\n'))
			next++;
		is_last = next >= len;
		/* Each line carries the first line's code: a line of its
		 * own code ("550-...", "550 ...") loses it. */
		start = i;
		if (end - start >= 3 && memcmp(text + start, text, 3) == 0 &&
		    (end - start == 3 || text[start + 3] == ' ' ||
		    text[start + 3] == '-'))
			start += end - start == 3 ? 3 : 4;
		ln = (size_t)snprintf(line, sizeof(line), "%s%c", code,
		    is_last ? ' ' : '-');
		for (size_t k = start; k < end && ln + 3 < sizeof(line); k++) {
			char c = text[k];

			line[ln++] = (c >= ' ' && c < 0x7f) ? c : '?';
		}
		memcpy(line + ln, "\r\n", 2);
		ln += 2;
		if (o + ln + 1 > out_size) {
			/* No room for this line: the one before ends the
			 * reply. */
			size_t b = o - 2;

			while (b > 0 && out[b - 1] != '\n')
				b--;
			out[b + 3] = ' ';
			break;
		}
		memcpy(out + o, line, ln);
		o += ln;
		i = next;
	}
	out[o] = '\0';
	return kind;
}

/* ---- The header model ------------------------------------------------ */

static size_t
field_bytes(const char *name, const char *value)
{
	return strlen(name) + strlen(value) + 3;
}

int
milter_header_parse(struct milter_header *h, const char *data, size_t len)
{
	size_t i = 0, vlen = 0, vcap = 0;	/* the last field's value */

	memset(h, 0, sizeof(*h));
	if (len > MILTER_MAX_HEADER)
		return -1;
	while (i < len) {
		size_t start = i, end, colon;
		struct milter_field *f;

		/* A field: its first line and the continuation lines (RFC
		 * 5322 §2.2.3); end is where its final CRLF starts. */
		for (;;) {
			const char *nl = memchr(data + i, '\n', len - i);

			i = nl != NULL ? (size_t)(nl - data) + 1 : len;
			if (i >= len || (data[i] != ' ' && data[i] != '\t'))
				break;
		}
		end = i;
		if (end > start && data[end - 1] == '\n')
			end--;
		if (end > start && data[end - 1] == '\r')
			end--;
		colon = start;
		while (colon < end && data[colon] != ':' &&
		    data[colon] != '\r' && data[colon] != '\n')
			colon++;
		if (colon >= end || data[colon] != ':' || colon == start) {
			/* Not a field (no colon on its first line): it goes
			 * with the value of the field before, as it was. */
			if (h->n == 0)
				return -1;
			/* Appended in place, the buffer grown by doubling: a
			 * new copy of the value per line was quadratic (1.4
			 * million "x" lines after one field: 10^12 bytes). */
			f = &h->fields[h->n - 1];
			if (vlen + 2 + (end - start) + 1 > vcap) {
				vcap = 2 * (vlen + 2 + (end - start) + 1);
				f->value = xrealloc(f->value, vcap);
			}
			memcpy(f->value + vlen, "\r\n", 2);
			memcpy(f->value + vlen + 2, data + start, end - start);
			vlen += 2 + (end - start);
			f->value[vlen] = '\0';
			h->bytes += end - start + 2;
			continue;
		}
		if (h->n >= MILTER_MAX_FIELDS)
			return -1;
		if (h->n % 64 == 0)
			h->fields = xrealloc(h->fields,
			    (h->n + 64) * sizeof(*h->fields));
		f = &h->fields[h->n++];
		f->name = xstrndup(data + start, colon - start);
		f->value = xstrndup(data + colon + 1, end - colon - 1);
		vlen = end - colon - 1;
		vcap = vlen + 1;
		/* Names with white space before the colon (RFC 5322
		 * §4.5.8, obsolete) keep it in the name we store. */
		h->bytes += field_bytes(f->name, f->value);
	}
	return 0;
}

void
milter_header_deinit(struct milter_header *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->fields[i].name);
		free(h->fields[i].value);
	}
	free(h->fields);
	memset(h, 0, sizeof(*h));
}

char *
milter_value_clean(const char *value, size_t len, bool is_leadspc)
{
	char *out = xmalloc(len * 3 + 4);
	size_t o = 0;
	bool is_bol = false;

	if (!is_leadspc)
		out[o++] = ' ';
	for (size_t i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\0')
			continue;
		if (c == '\r') {
			if (i + 1 < len && value[i + 1] == '\n')
				continue;
			c = '\n';	/* a lone CR is a line end too */
		}
		if (c == '\n') {
			is_bol = true;
			continue;
		}
		if (is_bol) {
			memcpy(out + o, "\r\n", 2);
			o += 2;
			if (c != ' ' && c != '\t')
				out[o++] = '\t';
			is_bol = false;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

static int
field_make(struct milter_header *h, struct milter_field *f, const char *name,
    const char *value, size_t len, bool is_leadspc)
{
	f->name = xstrdup(name);
	f->value = milter_value_clean(value, len, is_leadspc);
	if (h->bytes + field_bytes(f->name, f->value) > MILTER_MAX_HEADER) {
		free(f->name);
		free(f->value);
		return -1;
	}
	h->bytes += field_bytes(f->name, f->value);
	return 0;
}

int
milter_header_insert(struct milter_header *h, uint32_t index,
    const char *name, const char *value, size_t len, bool is_leadspc)
{
	struct milter_field f;

	if (h->n >= MILTER_MAX_FIELDS || !is_milter_field_name_ok(name) ||
	    field_make(h, &f, name, value, len, is_leadspc) < 0)
		return -1;
	if (index > h->n)
		index = (uint32_t)h->n;
	if (h->n % 64 == 0)
		h->fields = xrealloc(h->fields, (h->n + 64) *
		    sizeof(*h->fields));
	memmove(h->fields + index + 1, h->fields + index,
	    (h->n - index) * sizeof(*h->fields));
	h->fields[index] = f;
	h->n++;
	h->is_changed = true;
	return 0;
}

int
milter_header_add(struct milter_header *h, const char *name,
    const char *value, size_t len, bool is_leadspc)
{
	return milter_header_insert(h, (uint32_t)h->n, name, value, len,
	    is_leadspc);
}

/* Is the field's name name (case-insensitive; white space before the
 * colon of an obsolete field ignored)? */
static bool
is_field_named(const struct milter_field *f, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(f->name, name, n) != 0)
		return false;
	for (const char *c = f->name + n; *c != '\0'; c++) {
		if (*c != ' ' && *c != '\t')
			return false;
	}
	return true;
}

int
milter_header_change(struct milter_header *h, uint32_t index,
    const char *name, const char *value, size_t len, bool is_leadspc)
{
	uint32_t seen = 0;

	if (!is_milter_field_name_ok(name))
		return -1;
	/* Sendmail counts from 1; Postfix takes 0 as 1. */
	if (index == 0)
		index = 1;
	for (size_t i = 0; i < h->n; i++) {
		struct milter_field *f = &h->fields[i];
		struct milter_field nf;

		if (!is_field_named(f, name) || ++seen != index)
			continue;
		h->bytes -= field_bytes(f->name, f->value);
		if (len == 0) {
			free(f->name);
			free(f->value);
			memmove(h->fields + i, h->fields + i + 1,
			    (h->n - i - 1) * sizeof(*h->fields));
			h->n--;
			h->is_changed = true;
			return 0;
		}
		if (field_make(h, &nf, f->name, value, len, is_leadspc) < 0) {
			h->bytes += field_bytes(f->name, f->value);
			return -1;
		}
		free(f->name);
		free(f->value);
		*f = nf;
		h->is_changed = true;
		return 0;
	}
	/* No such field: a change adds it, a deletion does nothing. */
	if (len == 0)
		return 0;
	return milter_header_add(h, name, value, len, is_leadspc);
}

void
milter_header_format(const struct milter_header *h, struct buf *out)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct milter_field *f = &h->fields[i];

		if (buf_append(out, f->name, strlen(f->name)) < 0 ||
		    buf_append(out, ":", 1) < 0 ||
		    buf_append(out, f->value, strlen(f->value)) < 0 ||
		    buf_append(out, "\r\n", 2) < 0)
			panic("milter: header over its buffer");
	}
	if (buf_append(out, "\r\n", 2) < 0)
		panic("milter: header over its buffer");
}

int
milter_body_clean(struct buf *out, const char *data, size_t len, bool *is_cr)
{
	char tmp[4096];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = data[i];

		if (o + 2 > sizeof(tmp)) {
			if (buf_append(out, tmp, o) < 0)
				return -1;
			o = 0;
		}
		if (*is_cr) {
			*is_cr = false;
			if (c == '\n')
				continue;	/* the LF of a CRLF */
		}
		if (c == '\r') {
			tmp[o++] = '\r';
			tmp[o++] = '\n';
			*is_cr = true;
		} else if (c == '\n') {
			tmp[o++] = '\r';
			tmp[o++] = '\n';
		} else {
			tmp[o++] = c;
		}
	}
	return buf_append(out, tmp, o);
}
