/*
 * fuzz_milter: what a milter sends postern (src/milter/milter_proto.c):
 * the packet framing, the reply parser, REPLYCODE's cleaning, and the
 * end-of-message changes made to the header model and the body.
 *
 * Input: byte 0 holds flags (bit 0: the header section is taken from the
 * input, its length in byte 1, instead of a fixed one; bit 1: values come
 * with their leading space, SMFIP_HDR_LEADSPC); the rest is a stream of
 * packets as a milter writes them.
 *
 * Checked: a packet is never read past its length; a cleaned reply is
 * lines of "4xx"/"5xx" plus ' ' or '-', printable, each ending in CRLF,
 * the last with ' '; a cleaned body has no CR or LF outside CRLF; with
 * the fixed header, the formatted header after any changes is lines
 * ending in CRLF, each a field ("Name:" with a valid name) or a
 * continuation (starting with white space), the empty line only at the
 * end, and it parses back to the same number of fields.
 *
 * fuzz-sources: src/milter/milter_proto.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter/milter_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed[] =
    "Received: from x ([127.0.0.1])\r\n\tby mail.example.test\r\n"
    "From: a@b.test\r\nTo: c@d.test\r\nSubject: hi\r\n"
    "X-Spam: no\r\nX-Spam: maybe\r\n";

static void
check_reply(const char *out)
{
	const char *p = out;

	if (*p == '\0')
		abort();
	while (*p != '\0') {
		const char *e = strstr(p, "\r\n");

		if (e == NULL || (p[0] != '4' && p[0] != '5') || e - p < 4 ||
		    (p[3] != ' ' && p[3] != '-'))
			abort();
		for (const char *c = p; c < e; c++) {
			if (*c < ' ' || *c >= 0x7f)
				abort();
		}
		if ((e[2] == '\0') != (p[3] == ' '))
			abort();
		if (memcmp(p, out, 3) != 0)
			abort();
		p = e + 2;
	}
}

static void
check_crlf(const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\r' && (i + 1 >= n || d[i + 1] != '\n'))
			abort();
		if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
			abort();
	}
}

static void
check_header(const struct milter_header *h)
{
	struct buf out;
	struct milter_header again;
	size_t i = 0;

	buf_init(&out, 64 * 1024 * 1024);
	milter_header_format(h, &out);
	check_crlf(out.data, out.len);
	while (i < out.len) {
		const char *line = out.data + i;
		const char *e = memmem(line, out.len - i, "\r\n", 2);
		size_t n = (size_t)(e - line);

		if (n == 0) {
			if (i + 2 != out.len)
				abort();	/* an empty line inside */
			break;
		}
		if (line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', n);
			char name[300];

			if (colon == NULL || colon == line ||
			    (size_t)(colon - line) >= sizeof(name))
				abort();
			memcpy(name, line, (size_t)(colon - line));
			name[colon - line] = '\0';
			if (!is_milter_field_name_ok(name))
				abort();
		}
		i += n + 2;
	}
	if (milter_header_parse(&again, out.data, out.len - 2) < 0 ||
	    again.n != h->n)
		abort();
	milter_header_deinit(&again);
	buf_deinit(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct milter_header h;
	struct buf body;
	bool is_fixed = true, is_leadspc, is_cr = false;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0];
	is_leadspc = flags & 2;
	p++;
	size--;
	if ((flags & 1) && size >= 1) {
		size_t n = (unsigned char)p[0];

		if (n > size - 1)
			n = size - 1;
		if (milter_header_parse(&h, p + 1, n) == 0)
			is_fixed = false;
		else
			milter_header_deinit(&h);
		p += 1 + n;
		size -= 1 + n;
	}
	if (is_fixed && milter_header_parse(&h, fixed, sizeof(fixed) - 1) < 0)
		abort();
	buf_init(&body, 1024 * 1024);
	while (size > 0) {
		char cmd;
		const char *payload;
		size_t plen, used;
		struct milter_reply r;
		char reply[1024];

		if (milter_packet_split(p, size, &cmd, &payload, &plen,
		    &used) != PARSE_DONE)
			break;
		if (used > size || payload + plen > p + size)
			abort();
		/* A copy of its own: reads past it are found. */
		char *copy = malloc(plen + 1);

		memcpy(copy, payload, plen);
		copy[plen] = '\0';
		if (milter_reply_parse(cmd, copy, plen, &r) == 0) {
			switch (cmd) {
			case SMFIR_REPLYCODE:
				if (milter_replycode_clean(r.name,
				    strlen(r.name), reply, sizeof(reply)) > 0)
					check_reply(reply);
				break;
			case SMFIR_ADDHEADER:
				(void)milter_header_add(&h, r.name, r.value,
				    r.value_len, is_leadspc);
				break;
			case SMFIR_INSHEADER:
				(void)milter_header_insert(&h, r.index,
				    r.name, r.value, r.value_len, is_leadspc);
				break;
			case SMFIR_CHGHEADER:
				(void)milter_header_change(&h, r.index,
				    r.name, r.value, r.value_len, is_leadspc);
				break;
			case SMFIR_REPLBODY:
				if (milter_body_clean(&body, r.data,
				    r.data_len, &is_cr) < 0) {
					free(copy);
					goto done;
				}
				break;
			default:
				break;
			}
		}
		free(copy);
		p += used;
		size -= used;
	}
	check_crlf(body.data, body.len);
done:
	if (is_fixed)
		check_header(&h);
	milter_header_deinit(&h);
	buf_deinit(&body);
	return 0;
}
