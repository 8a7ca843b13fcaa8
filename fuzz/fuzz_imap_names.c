/*
 * libFuzzer harness for the small IMAP parsers of client input: modified
 * UTF-7 mailbox names (RFC 3501 §5.1.3) and the date and date-time forms
 * of SEARCH and APPEND. The input, cut at its first NUL, is decoded as a
 * name and parsed as both dates.
 *
 * Checked: a name that decodes re-encodes to a spelling that decodes to
 * the same name; a UTF-8 name encodes and decodes back;
 * a parsed date-time formats to a date that parses again.
 *
 * fuzz-sources: src/imap/imap_date.c
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char *dec, *enc;
	int64_t t;

	memcpy(in, data, size);
	in[size] = '\0';
	dec = mutf7_decode(in);
	if (dec != NULL) {
		char *again;

		enc = mutf7_encode(dec);
		if (enc == NULL)
			abort();
		again = mutf7_decode(enc);
		if (again == NULL || strcmp(again, dec) != 0)
			abort();
		free(again);
		free(enc);
		free(dec);
	}
	enc = mutf7_encode(in);
	if (enc != NULL) {
		dec = mutf7_decode(enc);
		if (dec == NULL || strcmp(dec, in) != 0)
			abort();
		free(dec);
		free(enc);
	}
	if (imap_date_time_parse(in, &t)) {
		char out[IMAP_DATE_TIME_LEN];
		int64_t again;

		imap_date_time_format(t, out);
		if (t >= 0 && t < 253402300800 &&
		    (!imap_date_time_parse(out, &again) || again != t))
			abort();
	}
	(void)imap_date_parse(in, &t);
	free(in);
	return 0;
}
