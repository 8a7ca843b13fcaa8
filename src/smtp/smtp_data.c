/*
 * smtp_data: the bytes after DATA (RFC 5321 §4.1.1.4). Removes the
 * dot-stuffing (§4.5.2) and finds the end, which is only ever CRLF "."
 * CRLF: a bare LF or bare CR is turned into CRLF in the stored message
 * and never starts a line that could end the data. That closes the
 * SMTP-smuggling class (CVE-2023-51764): ".\n", "\n.\n", "\r.\r" and
 * their mixtures are message content here, as they are for any server
 * that reads the standard strictly, so no server before or after us can
 * see a message end where we do not.
 */
#include "smtp/smtp_int.h"

void
smtp_data_init(struct smtp_data *d)
{
	d->state = SMTP_DATA_LINE_START;
	d->bare_newlines = 0;
}

enum parse_rc
smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    size_t *used_out, char *out, size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		switch (d->state) {
		case SMTP_DATA_DOT:
			if (c == '\r') {
				d->state = SMTP_DATA_DOT_CR;
				continue;
			}
			if (c == '\n') {
				/* ".\n" is a line holding a dot, not the end. */
				out[o++] = '.';
				out[o++] = '\r';
				out[o++] = '\n';
				d->bare_newlines++;
				d->state = SMTP_DATA_LINE_START_BARE;
				continue;
			}
			/* A stuffed dot: drop it, keep the rest. */
			d->state = SMTP_DATA_MID;
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				*used_out = i + 1;
				*out_len = o;
				return PARSE_DONE;
			}
			out[o++] = '.';
			out[o++] = '\r';
			out[o++] = '\n';
			d->bare_newlines++;
			d->state = SMTP_DATA_LINE_START_BARE;
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->state = SMTP_DATA_LINE_START;
				continue;
			}
			out[o++] = '\r';
			out[o++] = '\n';
			d->bare_newlines++;
			d->state = SMTP_DATA_LINE_START_BARE;
			break;
		default:
			break;
		}
		/* Here c starts or continues a line. */
		if (d->state == SMTP_DATA_LINE_START && c == '.') {
			d->state = SMTP_DATA_DOT;
			continue;
		}
		if (c == '\r') {
			d->state = SMTP_DATA_CR;
		} else if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			d->bare_newlines++;
			d->state = SMTP_DATA_LINE_START_BARE;
		} else {
			out[o++] = c;
			d->state = SMTP_DATA_MID;
		}
	}
	*used_out = len;
	*out_len = o;
	return PARSE_MORE;
}

/*
 * BDAT (RFC 3030 §2) carries the message as it is, with no dot-stuffing
 * and no end marker, but its line ends must be CRLF as in DATA (RFC 5321
 * §2.3.8): a bare CR or LF is turned into CRLF here too, so that a
 * message never reaches the store, or another server through the queue,
 * with line ends that differ from the ones of the same message sent with
 * DATA.
 */
size_t
smtp_data_bdat_feed(struct smtp_data *d, const char *in, size_t len,
    char *out)
{
	size_t o = 0;

	/* A CR comes out as CRLF at once, whatever follows, so that no call
	 * writes more than two bytes for each of its own: a CR held for the
	 * next call and written there made three of one byte (found by
	 * fuzz_smtp). The LF of a CRLF split across chunks is then dropped. */
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (d->state == SMTP_DATA_CR) {
			d->state = SMTP_DATA_MID;
			if (c == '\n')
				continue;
			d->bare_newlines++;
		}
		if (c == '\r' || c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			if (c == '\r')
				d->state = SMTP_DATA_CR;
			else
				d->bare_newlines++;
		} else {
			out[o++] = c;
		}
	}
	return o;
}

size_t
smtp_data_bdat_end(struct smtp_data *d, char *out)
{
	(void)out;
	/* A CR at the very end was bare; its CRLF is out already. */
	if (d->state == SMTP_DATA_CR) {
		d->state = SMTP_DATA_MID;
		d->bare_newlines++;
	}
	return 0;
}
