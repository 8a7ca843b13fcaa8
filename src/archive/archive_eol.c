/*
 * archive_eol: line ends between the store (CRLF, DESIGN.md: SMTP DATA
 * turns a bare LF or CR into CRLF, and an import stores what SMTP would)
 * and files on disk (LF, as Dovecot, mutt and isync write Maildir and
 * mbox files).
 */
#include "archive/archive.h"

void
archive_eol_init(struct archive_eol *e, bool is_to_lf)
{
	e->is_to_lf = is_to_lf;
	e->is_cr_pending = false;
}

size_t
archive_eol_feed(struct archive_eol *e, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (e->is_cr_pending) {
			e->is_cr_pending = false;
			if (c == '\n') {
				/* CRLF: LF on disk, CRLF in the store. */
				if (!e->is_to_lf)
					out[o++] = '\r';
				out[o++] = '\n';
				continue;
			}
			/* A bare CR: kept on disk, a line end in the
			 * store. */
			out[o++] = '\r';
			if (!e->is_to_lf)
				out[o++] = '\n';
		}
		if (c == '\r') {
			e->is_cr_pending = true;
			continue;
		}
		if (c == '\n' && !e->is_to_lf)
			out[o++] = '\r';
		out[o++] = c;
	}
	return o;
}

size_t
archive_eol_finish(struct archive_eol *e, char *out)
{
	size_t o = 0;

	if (e->is_cr_pending) {
		e->is_cr_pending = false;
		out[o++] = '\r';
		if (!e->is_to_lf)
			out[o++] = '\n';
	}
	return o;
}
