/*
 * libFuzzer harness for SORT and THREAD (imap_cmd_sort.c,
 * imap_cmd_thread.c; RFC 5256, 5957, 5267) and what they run in mime:
 * base subjects, collation keys, ENVELOPE addresses and both threading
 * algorithms over arbitrary header sets.
 *
 * Byte 0 sets the number of messages in a pretend selected mailbox (0 to
 * 127, UIDs 3, 6, 9, ..., \Recent in runs of three) and whether the
 * command is the UID form. The
 * first line of the rest is the command after "a " ("SORT (SUBJECT)
 * UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL"); every further line is what
 * the store holds of one message, fields split by '|': subject, Message-ID,
 * References, In-Reply-To, ENVELOPE text, Date (seconds), internal date,
 * size. Message i of the mailbox gets line i modulo their number.
 *
 * Checked: the command ends exactly once with OK, NO or BAD; a SORT or
 * THREAD reply names each message at most once and only messages of the
 * mailbox; THREAD's parentheses balance and never hold an empty list.
 * Memory is checked by ASan (no leak).
 *
 * fuzz-sources: src/imap/imap_cmd_sort.c src/imap/imap_cmd_thread.c
 * fuzz-sources: src/imap/imap_cmd_search.c src/imap/imap_view.c
 * fuzz-sources: src/imap/imap_parser.c src/imap/imap_parser_seqset.c
 * fuzz-sources: src/imap/imap_parser_section.c src/imap/imap_date.c
 * fuzz-sources: src/imap/imap_flags.c src/store/store_name.c
 * fuzz-sources: src/store/store_text.c src/imap/imap_out.c
 * fuzz-sources: src/mime/mime.c src/mime/mime_address.c src/mime/mime_field.c
 * fuzz-sources: src/mime/mime_imap.c src/mime/mime_scan.c src/mime/mime_str.c
 * fuzz-sources: src/mime/mime_text.c src/mime/mime_subject.c
 * fuzz-sources: src/mime/mime_thread.c
 * fuzz-packages: gmime-3.0
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"
#include "imap/imap_int.h"
#include "lib/buf.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TRAP(ret, name, ...) ret name(__VA_ARGS__) { abort(); }

TRAP(void, imap_write_flags, struct imap_session *s, uint32_t f,
    const char *k)
TRAP(void, imap_wait, struct imap_session *s)
TRAP(bool, imap_resumed, struct imap_session *s)
TRAP(int, store_msg_changes, struct store *st, int64_t mb, uint64_t m,
    struct store_msg **c, size_t *nc, uint32_t **x, size_t *nx,
    uint64_t *h, enum store_err *e)
TRAP(int, store_msg_list, struct store *st, int64_t mb, uint32_t a,
    uint32_t b, struct store_msg **l, size_t *n, enum store_err *e)
TRAP(void, store_msg_list_free, struct store_msg **l, size_t n)
TRAP(int, store_mailbox_get, struct store *st, int64_t a, const char *n,
    struct store_mailbox *mb, enum store_err *e)
TRAP(void, store_mailbox_deinit, struct store_mailbox *mb)
TRAP(struct store_watch *, store_watch_new, struct store *st, int64_t mb,
    struct event_base *b, void (*cb)(void *), void *arg)
TRAP(void, store_watch_free, struct store_watch **w)
TRAP(int, store_recent_claim, struct store *st, int64_t mb, uint32_t v,
    uint32_t end, uint32_t *f, enum store_err *e)
TRAP(int, store_recent_peek, struct store *st, int64_t mb, uint32_t v,
    uint32_t *f, enum store_err *e)
TRAP(int, imap_box_get, struct imap_session *s, const char *n, uint32_t r,
    struct imap_box *b, enum store_err *e)
TRAP(void, imap_box_deinit, struct imap_box *b)
TRAP(bool, imap_acl_view_check, struct imap_session *s)
TRAP(bool, imap_notify_selected_now, struct imap_session *s, bool *x)
TRAP(void, imap_notify_messages_new, struct imap_session *s, size_t first)
TRAP(void, net_conn_close, struct net_conn *c)
TRAP(bool, is_net_conn_closing, const struct net_conn *c)
TRAP(size_t, net_conn_pending, const struct net_conn *c)

/* What the pretend store holds, and what the command answered. */
static struct {
	char **lines;
	size_t nlines;
	const struct imap_view *v;
	char *out;
	size_t outlen;
	int ndone;
	const char *status;
} fz;

const char *
store_err_text(enum store_err e)
{
	return "error";
}

void
imap_write(struct imap_session *s, const void *d, size_t n)
{
	fz.out = realloc(fz.out, fz.outlen + n + 1);
	memcpy(fz.out + fz.outlen, d, n);
	fz.outlen += n;
	fz.out[fz.outlen] = '\0';
}

void
imap_printf(struct imap_session *s, const char *fmt, ...)
{
	char *t;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&t, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	imap_write(s, t, (size_t)n);
	free(t);
}

void
imap_done(struct imap_session *s, const char *st, const char *fmt, ...)
{
	fz.ndone++;
	fz.status = st;
}

/* OBJECTID's EMAILID key: no message has the id. */
int
imap_email_id_uids(struct imap_session *s, const char *id, uint32_t **u,
    size_t *n, enum store_err *e)
{
	*u = NULL;
	*n = 0;
	*e = STORE_OK;
	return 0;
}

/* Every message of the view, and one UID the view lacks. */
int
store_search(struct store *st, int64_t mb, const struct store_cond *c,
    uint32_t **u, size_t *n, enum store_err *e)
{
	*u = calloc(fz.v->n + 2, sizeof(**u));
	*n = 0;
	for (size_t i = 0; i < fz.v->n; i++)
		(*u)[(*n)++] = fz.v->msgs[i].uid;
	(*u)[(*n)++] = 1000000;
	*e = STORE_OK;
	return 0;
}

static char *
field(char **p)
{
	char *f = *p, *bar;

	if (f == NULL)
		return NULL;
	if ((bar = strchr(f, '|')) != NULL) {
		*bar = '\0';
		*p = bar + 1;
	} else {
		*p = NULL;
	}
	return *f != '\0' ? strdup(f) : NULL;
}

int
store_sort_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
    size_t *n_out, enum store_err *err_out)
{
	const struct imap_view *v = fz.v;

	*list_out = calloc(v->n + 1, sizeof(**list_out));
	*n_out = 0;
	for (size_t i = 0; i < v->n; i++) {
		struct store_sort_msg *m = &(*list_out)[(*n_out)++];
		char *line = fz.nlines ? strdup(fz.lines[i % fz.nlines]) :
		    strdup(""), *p = line, *f;

		m->uid = v->msgs[i].uid;
		m->subject = field(&p);
		m->message_id = field(&p);
		m->references = field(&p);
		m->in_reply_to = field(&p);
		m->envelope = field(&p);
		f = field(&p);
		m->date = f != NULL ? strtoll(f, NULL, 10) : -1;
		free(f);
		f = field(&p);
		m->internal_date = f != NULL ? strtoll(f, NULL, 10) : 0;
		free(f);
		f = field(&p);
		m->size = f != NULL ? strtoull(f, NULL, 10) : 0;
		free(f);
		free(line);
		if (!(what & STORE_SORT_SUBJECT)) {
			free(m->subject);
			m->subject = NULL;
		}
	}
	*err_out = STORE_OK;
	return 0;
}

void
store_sort_list_free(struct store_sort_msg **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].subject);
		free((*list)[i].envelope);
		free((*list)[i].message_id);
		free((*list)[i].references);
		free((*list)[i].in_reply_to);
	}
	free(*list);
	*list = NULL;
}

/* Each number at most once and a message of the view; for THREAD, the
 * parentheses balance and no list is empty. */
static void
reply_check(const char *word, bool is_uid, bool is_thread)
{
	const struct imap_view *v = fz.v;
	char *line = strstr(fz.out, word), *p;
	bool *seen = calloc(v->n + 1, sizeof(*seen));
	int depth = 0;

	if (line == NULL)
		abort();
	p = line + strlen(word);
	for (; *p != '\r' && *p != '\0'; p++) {
		if (*p == '(') {
			if (p[1] == ')')
				abort();
			depth++;
		} else if (*p == ')') {
			if (--depth < 0)
				abort();
		} else if (*p >= '0' && *p <= '9') {
			unsigned long x = strtoul(p, &p, 10);
			size_t at;

			p--;
			if (is_uid) {
				if (x == 0 || x % 3 != 0 || x / 3 > v->n)
					abort();
				at = x / 3 - 1;
			} else {
				if (x == 0 || x > v->n)
					abort();
				at = x - 1;
			}
			if (seen[at])
				abort();
			seen[at] = true;
		}
	}
	if (depth != 0 || (!is_thread && strchr(line, '(') != NULL))
		abort();
	free(seen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool is_init;
	struct imap_session s;
	struct imap_ctx ctx = { 0 };
	struct imap_view v;
	struct imap_parser p;
	struct imap_cmd *cmd = NULL;
	struct buf in;
	bool cont;
	char *text, *nl, *save = NULL;

	if (size < 1 || size > 8192)
		return 0;
	if (!is_init) {
		mime_init();
		is_init = true;
	}
	memset(&s, 0, sizeof(s));
	memset(&v, 0, sizeof(v));
	memset(&fz, 0, sizeof(fz));
	v.n = data[0] & 0x7f;
	v.msgs = calloc(v.n ? v.n : 1, sizeof(*v.msgs));
	/* MODSEQs kept (as once CONDSTORE is on): none is read from the
	 * store, which is not there. */
	v.modseqs = calloc(v.n ? v.n : 1, sizeof(*v.modseqs));
	for (size_t i = 0; i < v.n; i++) {
		v.msgs[i].uid = (uint32_t)(i + 1) * 3;
		/* Runs of three \Recent messages (RECENT, NEW, OLD). */
		v.msgs[i].is_recent = (i / 3) % 2 == 0;
	}
	fz.v = &v;
	s.view = &v;
	s.ctx = &ctx;
	s.state = IMAP_STATE_SELECTED;
	text = strndup((const char *)data + 1, size - 1);
	if ((nl = strchr(text, '\n')) != NULL) {
		*nl = '\0';
		for (char *l = strtok_r(nl + 1, "\n", &save); l != NULL;
		    l = strtok_r(NULL, "\n", &save)) {
			fz.lines = realloc(fz.lines, (fz.nlines + 1) *
			    sizeof(*fz.lines));
			fz.lines[fz.nlines++] = l;
		}
	}
	buf_init(&in, 16384);
	buf_append(&in, (data[0] & 0x80) ? "a UID " : "a ", (data[0] & 0x80) ?
	    6 : 2);
	buf_append(&in, text, strlen(text));
	buf_append(&in, "\r\n", 2);
	imap_parser_init(&p, 12000, 4096);
	if (imap_parser_feed(&p, &in, &cmd, &cont) == PARSE_DONE &&
	    (strcmp(cmd->name, "SORT") == 0 ||
	    strcmp(cmd->name, "THREAD") == 0)) {
		bool is_thread = strcmp(cmd->name, "THREAD") == 0;

		s.cmd = cmd;
		if (is_thread)
			imap_cmd_thread(&s, cmd);
		else
			imap_cmd_sort(&s, cmd);
		if (fz.ndone != 1)
			abort();
		if (strcmp(fz.status, "OK") == 0 && fz.out != NULL &&
		    strncmp(fz.out, "* ESEARCH", 9) != 0)
			reply_check(is_thread ? "* THREAD" : "* SORT",
			    cmd->is_uid, is_thread);
	}
	imap_cmd_free(&cmd);
	imap_parser_deinit(&p);
	buf_deinit(&in);
	free(v.msgs);
	free(v.modseqs);
	free(v.saved);
	free(fz.lines);
	free(fz.out);
	free(text);
	return 0;
}
