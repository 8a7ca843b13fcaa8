/*
 * imap_cmd_thread: THREAD and UID THREAD (RFC 5256 §3, §4) with the
 * ORDEREDSUBJECT and REFERENCES algorithms. The algorithms themselves are
 * mime's (mime_thread_build), pure functions that JMAP will share; this
 * file picks the messages (the search keys, as SORT does, through
 * imap_sort_rows_get), feeds them the cached Subject, Date: and ids, and
 * sends the result. No message is read. Runs on the session's thread.
 */
#include "imap/imap_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mime/mime.h"

void
imap_cmd_thread(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->nargs;
	enum mime_thread_algo algo;
	struct imap_sort_rows r;
	struct mime_thread_msg *msgs;
	struct mime_thread t;
	uint32_t *numbers;
	unsigned what = STORE_SORT_SUBJECT;
	char *text;

	if (s->view == NULL) {
		imap_done(s, "BAD", "Select a mailbox first");
		return;
	}
	if (nargs >= 1 && is_imap_arg_atom(&args[0], "REFERENCES")) {
		algo = MIME_THREAD_REFERENCES;
		what |= STORE_SORT_IDS;
	} else if (nargs >= 1 && is_imap_arg_atom(&args[0],
	    "ORDEREDSUBJECT")) {
		algo = MIME_THREAD_ORDEREDSUBJECT;
	} else {
		imap_done(s, "BAD", "THREAD algorithms are ORDEREDSUBJECT and "
		    "REFERENCES");
		return;
	}
	if (nargs < 2) {
		imap_done(s, "BAD", "THREAD needs a charset");
		return;
	}
	if (!is_imap_sort_charset(&args[1])) {
		imap_done(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Supported "
		    "charsets are UTF-8 and US-ASCII");
		return;
	}
	if (nargs < 3) {
		imap_done(s, "BAD", "THREAD needs search keys (ALL for every "
		    "message)");
		return;
	}
	if (imap_sort_rows_get(s, args + 2, nargs - 2, what, &r) < 0) {
		imap_done(s, r.is_no ? "NO" : "BAD", "%s", r.error);
		return;
	}
	msgs = xcalloc(r.n + 1, sizeof(*msgs));
	numbers = xcalloc(r.n + 1, sizeof(*numbers));
	for (size_t i = 0; i < r.n; i++) {
		const struct store_sort_msg *m = r.rows[i].msg;

		msgs[i].sent = imap_sort_sent_date(m);
		msgs[i].subject = m->subject;
		msgs[i].message_id = m->message_id;
		msgs[i].references = m->references;
		msgs[i].in_reply_to = m->in_reply_to;
		numbers[i] = cmd->is_uid ? m->uid :
		    (uint32_t)(r.rows[i].at + 1);
	}
	if (mime_thread_build(msgs, r.n, algo, &t) < 0) {
		free(msgs);
		free(numbers);
		imap_sort_rows_deinit(&r);
		imap_done(s, "NO", "[LIMIT] Too many messages to thread");
		return;
	}
	text = mime_thread_format(&t, numbers);
	/* RFC 5256 §4: thread-data = "THREAD" [SP 1*thread-list]. */
	imap_write(s, "* THREAD", 8);
	if (text[0] != '\0') {
		imap_write(s, " ", 1);
		imap_write(s, text, strlen(text));
	}
	imap_write(s, "\r\n", 2);
	free(text);
	mime_thread_deinit(&t);
	free(msgs);
	free(numbers);
	imap_sort_rows_deinit(&r);
	imap_done(s, "OK", "%s completed", cmd->is_uid ? "UID THREAD" :
	    "THREAD");
}
