/*
 * imap_cmd_fetch: FETCH and UID FETCH (RFC 9051 §6.4.5 and §7.5.2, RFC
 * 3501 for the IMAP4rev1 items, RFC 3516 BINARY, RFC 7162 CONDSTORE and
 * QRESYNC modifiers).
 *
 * A FETCH is a job on the session: the items are parsed once, the
 * messages resolved to view indexes, \Seen set in one store change when a
 * body item asks for it, and then the replies are written one message at
 * a time. Bodies are streamed from the message file in chunks while the
 * connection's output stays under NET_DRAIN_LOW; when it fills up the job
 * waits for job_drained. Nothing holds a whole message, nor all the
 * replies, in memory. Runs on the session's worker thread.
 */
#include "imap/imap_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mime/mime.h"

/* Items in one FETCH; more is a mistake, not a need. */
#define FETCH_ATTS_MAX 256
/* Messages whose size, date, body and structure are read from the store at
 * once, and how far apart (in the view) they may be: a sparse set reads no
 * more than BATCH_SPAN rows for BATCH_MAX messages. */
#define BATCH_MAX 64
#define BATCH_SPAN 1024

enum fetch_att {
	FA_UID,
	FA_FLAGS,
	FA_INTERNALDATE,
	FA_SIZE,		/* RFC822.SIZE */
	FA_ENVELOPE,
	FA_BODY,		/* BODY without a section: the structure */
	FA_BODYSTRUCTURE,
	FA_MODSEQ,		/* RFC 7162 §3.1.4 */
	FA_EMAILID,		/* RFC 8474 §5.1 */
	FA_THREADID,		/* RFC 8474 §5.2 */
	FA_SAVEDATE,		/* RFC 8514 §4.1 */
	FA_PREVIEW,		/* RFC 8970 §3 */
	FA_SECTION,		/* BODY[...], BINARY[...], RFC822... */
};

struct fetch_att_req {
	enum fetch_att att;
	struct imap_fetch_section sec;	/* FA_SECTION */
	char *name;		/* FA_SECTION: the reply's item name,
				 * without "<origin>" */
	const char *atom;	/* as sent, for spotting repeats */
};

enum fetch_phase {
	FETCH_PHASE_SEEN,	/* waiting for the store to set \Seen */
	FETCH_PHASE_RUN,	/* writing replies */
};

struct fetch_job {
	enum fetch_phase phase;
	struct fetch_att_req *atts;	/* in the order asked */
	size_t natts, cap;
	bool has_uid, has_flags, has_modseq;	/* asked for */
	bool is_preview_lazy;	/* PREVIEW (LAZY): no preview made now */
	bool has_seen_att;	/* a body item that sets \Seen */
	bool needs_structure;
	bool needs_meta;	/* size, date or body: read from the store */
	size_t *idx;		/* view indexes, ascending */
	size_t n;
	bool *is_seen_set;	/* per idx: \Seen set by this FETCH */
	uint32_t *seen_uids;
	size_t nseen;

	/* What the store has of idx[batch_start..batch_end): rows (by
	 * UID), and per message its row (NULL: expunged) and, when
	 * needs_structure, its structure; sm is the open message's row. */
	struct store_msg *rows;
	size_t nrows;
	size_t batch_start, batch_end;
	const struct store_msg **batch_rows;
	struct store_structure *batch_sts;
	bool *batch_has_st;
	const struct store_msg *sm;

	/* Where the writing is. */
	size_t pos;		/* index into idx */
	bool is_msg_open;	/* "* n FETCH (" written */
	size_t att;		/* next item of the open message */
	size_t nwritten;	/* items written for the open message */
	struct store_structure st;
	bool has_st;
	int fd;
	uint64_t fd_size;
	struct imap_fetch_plan *plans;	/* per att */

	/* The section being streamed. */
	bool is_streaming;
	struct imap_filter filter;
	uint64_t rpos;		/* next byte of the file to read */
	uint64_t skip_left;
	uint64_t len_left;
	bool is_input_done;

	bool is_expunge_issue;	/* a message was gone */
	bool is_temp_issue;	/* a message could not be read */
	char *in, *out;		/* scratch for struct imap_fetch_msg */
};

static void fetch_pump(struct imap_session *s);

static void
batch_free(struct fetch_job *j)
{
	store_msg_list_free(&j->rows, j->nrows);
	j->nrows = 0;
	if (j->batch_sts != NULL)
		for (size_t k = 0; k < j->batch_end - j->batch_start; k++)
			store_structure_deinit(&j->batch_sts[k]);
	free(j->batch_sts);
	free(j->batch_has_st);
	free(j->batch_rows);
	j->batch_sts = NULL;
	j->batch_has_st = NULL;
	j->batch_rows = NULL;
	j->batch_start = j->batch_end = 0;
}

static void
msg_close(struct fetch_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->has_st)
		store_structure_deinit(&j->st);
	j->has_st = false;
	j->is_msg_open = false;
	j->is_streaming = false;
}

static void
fetch_job_free(void *arg)
{
	struct fetch_job *j = arg;

	if (j == NULL)
		return;
	msg_close(j);
	for (size_t i = 0; i < j->natts; i++) {
		imap_fetch_section_deinit(&j->atts[i].sec);
		free(j->atts[i].name);
	}
	free(j->atts);
	free(j->plans);
	batch_free(j);
	free(j->idx);
	free(j->is_seen_set);
	free(j->seen_uids);
	free(j->in);
	free(j->out);
	free(j);
}

/* ---- Parsing the items -------------------------------------------------- */

/* A header field name of the reply's section: as an atom when it can be,
 * else quoted (RFC 9051 §9 header-fld-name = astring). */
static void
name_add_field(char **name, size_t *len, const char *field)
{
	bool is_atom = *field != '\0';
	size_t n = strlen(field);
	char *p;

	for (const char *c = field; *c != '\0'; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f ||
		    strchr("(){%*\"\\]", *c) != NULL)
			is_atom = false;
	}
	*name = xrealloc(*name, *len + 2 * n + 4);
	p = *name + *len;
	if (is_atom) {
		memcpy(p, field, n);
		p += n;
	} else {
		*p++ = '"';
		for (const char *c = field; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p = '\0';
	*len = (size_t)(p - *name);
}

/* The reply names a section as asked, less ".PEEK" and the partial's
 * count (RFC 9051 §7.5.2: "BODY[<section>]<<origin octet>>"). */
static char *
section_name(const struct imap_fetch_section *sec)
{
	static const char *const texts[] = {
		[IMAP_SECTION_ALL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};
	const char *kind = sec->kind == IMAP_FETCH_BINARY_SIZE ?
	    "BINARY.SIZE" : sec->kind == IMAP_FETCH_BINARY ||
	    sec->kind == IMAP_FETCH_BINARY_PEEK ? "BINARY" : "BODY";
	char *name = xmalloc(32 + sec->nparts * 11);
	size_t len;

	len = (size_t)sprintf(name, "%s[", kind);
	for (size_t i = 0; i < sec->nparts; i++)
		len += (size_t)sprintf(name + len, "%s%" PRIu32,
		    i > 0 ? "." : "", sec->parts[i]);
	if (sec->text != IMAP_SECTION_ALL)
		len += (size_t)sprintf(name + len, "%s%s",
		    sec->nparts > 0 ? "." : "", texts[sec->text]);
	if (sec->nfields > 0) {
		name = xrealloc(name, len + 3);
		strcpy(name + len, " (");
		len += 2;
		for (size_t i = 0; i < sec->nfields; i++) {
			if (i > 0) {
				name = xrealloc(name, len + 2);
				strcpy(name + len++, " ");
			}
			name_add_field(&name, &len, sec->fields[i]);
		}
		name = xrealloc(name, len + 2);
		strcpy(name + len++, ")");
	}
	name = xrealloc(name, len + 2);
	strcpy(name + len, "]");
	return name;
}

static bool
has_att(const struct fetch_job *j, enum fetch_att att)
{
	for (size_t i = 0; i < j->natts; i++)
		if (j->atts[i].att == att)
			return true;
	return false;
}

/* Adds one fetch-att (RFC 9051 §9). Returns 0, or -1 when it is none. */
static int
att_add(struct fetch_job *j, const char *atom)
{
	static const struct {
		const char *word;
		enum fetch_att att;
	} simple[] = {
		{ "UID", FA_UID },
		{ "FLAGS", FA_FLAGS },
		{ "INTERNALDATE", FA_INTERNALDATE },
		{ "RFC822.SIZE", FA_SIZE },
		{ "ENVELOPE", FA_ENVELOPE },
		{ "BODY", FA_BODY },
		{ "BODYSTRUCTURE", FA_BODYSTRUCTURE },
		{ "MODSEQ", FA_MODSEQ },
		{ "EMAILID", FA_EMAILID },
		{ "THREADID", FA_THREADID },
		{ "SAVEDATE", FA_SAVEDATE },
		{ "PREVIEW", FA_PREVIEW },
	};
	struct fetch_att_req *a;

	for (size_t k = 0; k < ARRAY_LEN(simple); k++) {
		if (strcasecmp(atom, simple[k].word) != 0)
			continue;
		/* The same item twice is answered once. */
		if (has_att(j, simple[k].att))
			return 0;
		if (j->natts == j->cap)
			return -1;
		a = &j->atts[j->natts++];
		memset(a, 0, sizeof(*a));
		a->att = simple[k].att;
		a->atom = atom;
		if (a->att == FA_ENVELOPE || a->att == FA_BODY ||
		    a->att == FA_BODYSTRUCTURE || a->att == FA_PREVIEW)
			j->needs_structure = true;
		return 0;
	}
	for (size_t i = 0; i < j->natts; i++)
		if (j->atts[i].atom != NULL &&
		    strcasecmp(j->atts[i].atom, atom) == 0)
			return 0;
	if (j->natts == j->cap)
		return -1;
	a = &j->atts[j->natts];
	memset(a, 0, sizeof(*a));
	a->att = FA_SECTION;
	a->atom = atom;
	/* RFC 3501 §6.4.5: RFC822 is BODY[], RFC822.HEADER is
	 * BODY.PEEK[HEADER] and RFC822.TEXT is BODY[TEXT], each answered
	 * under its own name. */
	if (strcasecmp(atom, "RFC822") == 0) {
		a->sec.kind = IMAP_FETCH_BODY;
		a->name = xstrdup("RFC822");
	} else if (strcasecmp(atom, "RFC822.HEADER") == 0) {
		a->sec.kind = IMAP_FETCH_BODY_PEEK;
		a->sec.text = IMAP_SECTION_HEADER;
		a->name = xstrdup("RFC822.HEADER");
	} else if (strcasecmp(atom, "RFC822.TEXT") == 0) {
		a->sec.kind = IMAP_FETCH_BODY;
		a->sec.text = IMAP_SECTION_TEXT;
		a->name = xstrdup("RFC822.TEXT");
	} else if (strchr(atom, '[') != NULL &&
	    imap_fetch_section_parse(atom, &a->sec) == 0) {
		a->name = section_name(&a->sec);
	} else {
		return -1;
	}
	if (a->sec.kind == IMAP_FETCH_BODY || a->sec.kind == IMAP_FETCH_BINARY)
		j->has_seen_att = true;
	j->needs_structure = true;
	j->natts++;
	return 0;
}

/* fetch-att / "(" fetch-att *(SP fetch-att) ")" / the macros ALL, FAST,
 * FULL, which stand alone (RFC 9051 §6.4.5). */
static int
atts_parse(struct fetch_job *j, const struct imap_arg *a)
{
	static const char *const macros[][6] = {
		{ "ALL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
		    NULL },
		{ "FAST", "FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL },
		{ "FULL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
		    "BODY" },
	};

	if (a->kind == IMAP_ARG_ATOM) {
		for (size_t k = 0; k < ARRAY_LEN(macros); k++) {
			if (strcasecmp(a->str, macros[k][0]) != 0)
				continue;
			for (size_t i = 1; i < 6 && macros[k][i] != NULL; i++)
				if (att_add(j, macros[k][i]) < 0)
					return -1;
			return 0;
		}
		return att_add(j, a->str);
	}
	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		if (a->list[i].kind != IMAP_ARG_ATOM ||
		    att_add(j, a->list[i].str) < 0)
			return -1;
		/* RFC 8970 §3: PREVIEW (LAZY). */
		if (is_imap_arg_atom(&a->list[i], "PREVIEW") &&
		    i + 1 < a->len && a->list[i + 1].kind == IMAP_ARG_LIST) {
			const struct imap_arg *m = &a->list[++i];

			if (m->len == 0)
				return -1;
			for (size_t k = 0; k < m->len; k++)
				if (!is_imap_arg_atom(&m->list[k], "LAZY"))
					return -1;
			j->is_preview_lazy = true;
		}
	}
	return 0;
}

/* A preview for a body stored before previews were kept: made from the
 * first PREVIEW_READ_MAX bytes of the message (where its first text part
 * is, but for a mail of huge headers). New string, or NULL when the file
 * cannot be read. */
#define PREVIEW_READ_MAX (1024 * 1024)
static char *
preview_make(struct imap_session *s, const struct store_msg *sm)
{
	struct mime_info mi;
	enum store_err err;
	size_t want = sm->size < PREVIEW_READ_MAX ? (size_t)sm->size :
	    PREVIEW_READ_MAX;
	char *buf, *out = NULL;
	ssize_t n;
	int fd = store_blob_open(s->ctx->store, sm->blob, &err);

	if (fd < 0)
		return NULL;
	buf = xmalloc(want + 1);
	n = imap_fetch_read(fd, buf, want, 0);
	close(fd);
	if (n >= 0 && mime_parse(buf, (size_t)n, &mi) == 0) {
		out = mi.preview;
		mi.preview = NULL;
		mime_info_deinit(&mi);
	}
	free(buf);
	return out;
}

/* ---- Writing ----------------------------------------------------------- */

static const char *
store_err_code(enum store_err err)
{
	return err == STORE_TEMP || err == STORE_NO_SPACE ? "UNAVAILABLE" :
	    "SERVERBUG";
}

/* Ends the FETCH: OK, or NO when some messages could not be answered. */
static void
fetch_finish(struct imap_session *s, struct fetch_job *j)
{
	/* RFC 9051 §7.1 EXPUNGEISSUED. */
	if (j->is_temp_issue)
		imap_done(s, "NO", "[UNAVAILABLE] Some messages could not be "
		    "read; try again");
	else if (j->is_expunge_issue)
		/* imaptest's benchmark counts this NO as an error unless
		 * the text says "no longer exist" (as Dovecot's does). */
		imap_done(s, "NO", "[EXPUNGEISSUED] Some of the requested "
		    "messages no longer exist");
	else
		imap_done(s, "OK", "FETCH completed");
}

/* Reads what the store has of the next batch of messages from j->pos
 * on: their rows in one read, their structures in another. */
static int
batch_load(struct imap_session *s, struct fetch_job *j, enum store_err *err)
{
	const struct imap_view *v = s->view;
	size_t end = j->pos + 1, n, at = 0;
	int64_t *blobs = NULL;

	while (end < j->n && end - j->pos < BATCH_MAX &&
	    j->idx[end] - j->idx[j->pos] < BATCH_SPAN)
		end++;
	batch_free(j);
	if (store_msg_list(s->ctx->store, v->mailbox,
	    v->msgs[j->idx[j->pos]].uid, v->msgs[j->idx[end - 1]].uid,
	    &j->rows, &j->nrows, err) < 0)
		return -1;
	n = end - j->pos;
	j->batch_start = j->pos;
	j->batch_end = end;
	j->batch_rows = xcalloc(n, sizeof(*j->batch_rows));
	/* Both ascend by UID: one merge. */
	for (size_t k = 0; k < n; k++) {
		uint32_t uid = v->msgs[j->idx[j->pos + k]].uid;

		while (at < j->nrows && j->rows[at].uid < uid)
			at++;
		if (at < j->nrows && j->rows[at].uid == uid)
			j->batch_rows[k] = &j->rows[at];
	}
	if (!j->needs_structure)
		return 0;
	blobs = xcalloc(n, sizeof(*blobs));
	for (size_t k = 0; k < n; k++)
		blobs[k] = j->batch_rows[k] != NULL ? j->batch_rows[k]->blob :
		    0;
	j->batch_sts = xcalloc(n, sizeof(*j->batch_sts));
	j->batch_has_st = xcalloc(n, sizeof(*j->batch_has_st));
	if (store_blob_structures(s->ctx->store, blobs, n, j->batch_sts,
	    j->batch_has_st, err) < 0) {
		free(blobs);
		return -1;
	}
	free(blobs);
	return 0;
}

/* Points j->sm at the store's row of message j->idx[j->pos] and moves its
 * structure into j->st. Returns 0, or -1 with *err set (STORE_NOT_FOUND:
 * expunged). */
static int
batch_take(struct imap_session *s, struct fetch_job *j, enum store_err *err)
{
	size_t k;

	j->sm = NULL;
	if (j->pos >= j->batch_end && batch_load(s, j, err) < 0)
		return -1;
	k = j->pos - j->batch_start;
	*err = STORE_NOT_FOUND;
	if (j->batch_rows[k] == NULL)
		return -1;
	j->sm = j->batch_rows[k];
	if (j->needs_structure) {
		if (!j->batch_has_st[k])
			return -1;
		j->st = j->batch_sts[k];
		memset(&j->batch_sts[k], 0, sizeof(j->batch_sts[k]));
		j->batch_sts[k].date = -1;
		j->has_st = true;
	}
	*err = STORE_OK;
	return 0;
}

/* Opens message j->idx[j->pos] and plans its sections. Returns 1 when the
 * message is ready to write, 0 when it is skipped, -1 when the command
 * ended (imap_done called). */
static int
msg_open(struct imap_session *s, struct fetch_job *j)
{
	const struct imap_msg *m = &s->view->msgs[j->idx[j->pos]];
	struct store *store = s->ctx->store;
	enum store_err err = STORE_OK;
	bool has_section = false;
	struct imap_fetch_msg fm;
	struct stat sb;

	j->att = 0;
	j->nwritten = 0;
	for (size_t i = 0; i < j->natts; i++)
		if (j->atts[i].att == FA_SECTION)
			has_section = true;
	if (j->needs_meta && batch_take(s, j, &err) < 0)
		goto gone;
	if (has_section) {
		j->fd = store_blob_open(store, j->sm->blob, &err);
		if (j->fd < 0)
			goto gone;
		if (fstat(j->fd, &sb) < 0 ||
		    (uint64_t)sb.st_size < j->sm->size) {
			log_error(s->sid, "imap.fetch_short uid=%" PRIu32
			    " size=%" PRIu64, m->uid, j->sm->size);
			err = STORE_TEMP;
			goto gone;
		}
		j->fd_size = (uint64_t)sb.st_size;
		fm.fd = j->fd;
		fm.fd_size = j->fd_size;
		fm.size = j->sm->size;
		fm.st = &j->st;
		fm.in = j->in;
		fm.out = j->out;
		for (size_t i = 0; i < j->natts; i++) {
			int rc;

			if (j->atts[i].att != FA_SECTION)
				continue;
			errno = 0;
			rc = imap_fetch_plan(&fm, &j->atts[i].sec,
			    &j->plans[i]);
			if (rc == -2) {
				msg_close(j);
				imap_done(s, "NO", "[UNKNOWN-CTE] Cannot "
				    "decode the Content-Transfer-Encoding of "
				    "that part");
				return -1;
			}
			if (rc < 0) {
				log_error(s->sid, "imap.fetch_read uid=%"
				    PRIu32 " error=\"%s\"", m->uid,
				    errno != 0 ? strerror(errno) :
				    "parts beyond the file");
				err = STORE_TEMP;
				goto gone;
			}
		}
	}
	/* RFC 9051 §7.3.5: a keyword is in FLAGS before a FETCH shows it. */
	imap_view_flags_announce(s);
	/* RFC 9586 §3.3: under UIDONLY the reply is named by UID. */
	if (s->is_uidonly)
		imap_printf(s, "* UIDFETCH %" PRIu32 " (", m->uid);
	else
		imap_printf(s, "* %zu FETCH (", j->idx[j->pos] + 1);
	j->is_msg_open = true;
	return 1;
gone:
	/* A message expunged by another session may have lost its file
	 * already; it is left out of the answer. */
	if (err == STORE_NOT_FOUND || m->is_expunged) {
		j->is_expunge_issue = true;
	} else {
		log_error(s->sid, "imap.fetch_open uid=%" PRIu32
		    " error=\"%s\"", m->uid, store_err_text(err));
		j->is_temp_issue = true;
	}
	msg_close(j);
	return 0;
}

static void
item_sep(struct imap_session *s, struct fetch_job *j)
{
	if (j->nwritten++ > 0)
		imap_write(s, " ", 1);
}

static void
write_structure(struct imap_session *s, const char *name, const char *text)
{
	imap_printf(s, "%s ", name);
	if (text != NULL)
		imap_write(s, text, strlen(text));
	else
		imap_write(s, "NIL", 3);
}

/* Starts one section item: its name and literal header, then the data
 * is streamed by stream_step(). */
static void
section_begin(struct imap_session *s, struct fetch_job *j, size_t i)
{
	const struct fetch_att_req *a = &j->atts[i];
	const struct imap_fetch_plan *p = &j->plans[i];

	if (a->sec.kind == IMAP_FETCH_BINARY_SIZE) {
		/* RFC 3516 §4.3: the size of the decoded part. */
		imap_printf(s, "%s %" PRIu64, a->name, p->total);
		return;
	}
	imap_write(s, a->name, strlen(a->name));
	if (a->sec.has_partial)
		imap_printf(s, "<%" PRIu64 ">", a->sec.partial_offset);
	if (p->is_nil) {
		imap_write(s, " NIL", 4);
		return;
	}
	if (p->len == 0) {
		imap_write(s, " \"\"", 3);
		return;
	}
	imap_printf(s, " %s{%" PRIu64 "}\r\n", p->is_literal8 ? "~" : "",
	    p->len);
	imap_fetch_filter_init(&j->filter, p->filter, a->sec.fields,
	    a->sec.nfields);
	j->rpos = p->start;
	j->skip_left = p->skip;
	j->len_left = p->len;
	j->is_input_done = false;
	/* Plain bytes need not be read to be skipped. */
	if (p->filter == IMAP_FILTER_COPY) {
		j->rpos += p->skip;
		j->skip_left = 0;
	}
	j->is_streaming = true;
}

/* Sends the part of out that falls in the partial window. */
static void
window_write(struct imap_session *s, struct fetch_job *j, const char *out,
    size_t n)
{
	if (j->skip_left >= n) {
		j->skip_left -= n;
		return;
	}
	out += j->skip_left;
	n -= (size_t)j->skip_left;
	j->skip_left = 0;
	if (n > j->len_left)
		n = (size_t)j->len_left;
	imap_write(s, out, n);
	j->len_left -= n;
}

/* RFC 9051 §4.3: a literal is CHAR8, which has no NUL; only BINARY's
 * literal8 may carry one. A message stored with NUL octets (APPEND of a
 * ~{literal8}, or 8-bit mail) shows them as 0x80 in BODY[], as Dovecot
 * does; the length stays the same. */
static void
nul_replace(char *buf, size_t n)
{
	char *p = buf, *end = buf + n;

	while ((p = memchr(p, '\0', (size_t)(end - p))) != NULL)
		*p++ = (char)0x80;
}

/* Streams one more chunk of the section being sent. Returns 0, or -1
 * when the connection was closed. */
static int
stream_step(struct imap_session *s, struct fetch_job *j)
{
	const struct imap_fetch_plan *p = &j->plans[j->att];
	size_t n;

	if (j->len_left == 0) {
		j->is_streaming = false;
		j->att++;
		return 0;
	}
	if (!j->is_input_done && j->rpos < p->end) {
		size_t want = p->end - j->rpos > IMAP_FETCH_CHUNK ?
		    IMAP_FETCH_CHUNK : (size_t)(p->end - j->rpos);
		ssize_t got = imap_fetch_read(j->fd, j->in, want, j->rpos);

		if (got > 0) {
			j->rpos += (uint64_t)got;
			n = imap_fetch_filter_run(&j->filter, j->in,
			    (size_t)got, j->out);
			if (!p->is_literal8)
				nul_replace(j->out, n);
			window_write(s, j, j->out, n);
			return 0;
		}
	} else if (!j->is_input_done) {
		j->is_input_done = true;
		n = imap_fetch_filter_end(&j->filter, j->out);
		if (!p->is_literal8)
			nul_replace(j->out, n);
		window_write(s, j, j->out, n);
		return 0;
	}
	/* The file ended or failed in the middle of a literal whose length
	 * was promised: only closing the connection can tell the client. */
	log_error(s->sid, "imap.fetch_stream uid=%" PRIu32 " error=\"%s\"",
	    s->view->msgs[j->idx[j->pos]].uid,
	    errno != 0 ? strerror(errno) : "short file");
	net_conn_close(s->conn);
	return -1;
}

/* Writes the next item of the open message, or its end. */
static void
item_step(struct imap_session *s, struct fetch_job *j)
{
	const struct imap_msg *m = &s->view->msgs[j->idx[j->pos]];
	char date[IMAP_DATE_TIME_LEN];
	char id[AUTH_OBJECT_ID_LEN];
	size_t i = j->att;

	if (i == 0 && (s->cmd->is_uid || s->is_condstore) && !j->has_uid &&
	    !s->is_uidonly) {
		/* RFC 9051 §6.4.9: UID FETCH replies carry the UID; so does
		 * every FETCH reply once CONDSTORE is on, for the client to
		 * file the MODSEQ by (RFC 7162 §3.2.4). */
		item_sep(s, j);
		imap_printf(s, "UID %" PRIu32, m->uid);
	}
	if (i == j->natts) {
		/* The items this FETCH adds: FLAGS where it set \Seen
		 * (RFC 9051 §6.4.5), MODSEQ once CONDSTORE is on (RFC
		 * 7162 §3.1.4.1). */
		if (j->is_seen_set[j->pos] && !j->has_flags) {
			item_sep(s, j);
			imap_write(s, "FLAGS ", 6);
			imap_write_flags(s, imap_view_flags(s, j->idx[j->pos]),
			    imap_view_keywords(s->view, j->idx[j->pos]));
		}
		if (s->is_condstore && !j->has_modseq) {
			item_sep(s, j);
			imap_printf(s, "MODSEQ (%" PRIu64 ")",
			    imap_view_modseq(s, j->idx[j->pos]));
		}
		imap_write(s, ")\r\n", 3);
		msg_close(j);
		j->pos++;
		return;
	}
	item_sep(s, j);
	switch (j->atts[i].att) {
	case FA_UID:
		imap_printf(s, "UID %" PRIu32, m->uid);
		break;
	case FA_FLAGS:
		imap_write(s, "FLAGS ", 6);
		imap_write_flags(s, imap_view_flags(s, j->idx[j->pos]),
		    imap_view_keywords(s->view, j->idx[j->pos]));
		break;
	case FA_INTERNALDATE:
		imap_date_time_format(j->sm->internal_date, date);
		imap_printf(s, "INTERNALDATE \"%s\"", date);
		break;
	case FA_SIZE:
		imap_printf(s, "RFC822.SIZE %" PRIu64, j->sm->size);
		break;
	case FA_ENVELOPE:
		write_structure(s, "ENVELOPE", j->st.envelope);
		break;
	case FA_BODY:
		write_structure(s, "BODY", j->st.body);
		break;
	case FA_BODYSTRUCTURE:
		write_structure(s, "BODYSTRUCTURE", j->st.bodystructure);
		break;
	case FA_MODSEQ:
		imap_printf(s, "MODSEQ (%" PRIu64 ")",
		    imap_view_modseq(s, j->idx[j->pos]));
		break;
	case FA_EMAILID:
		imap_email_id(s, j->sm->blob, id);
		imap_printf(s, "EMAILID (%s)", id);
		break;
	case FA_SAVEDATE:
		/* NIL for a message stored before save dates were kept. */
		if (j->sm->saved == 0) {
			imap_write(s, "SAVEDATE NIL", 12);
			break;
		}
		imap_date_time_format(j->sm->saved, date);
		imap_printf(s, "SAVEDATE \"%s\"", date);
		break;
	case FA_PREVIEW:
		/* RFC 8970 §3: NIL when LAZY asks for no work now. */
		imap_write(s, "PREVIEW ", 8);
		if (j->st.preview == NULL && !j->is_preview_lazy)
			j->st.preview = preview_make(s, j->sm);
		imap_write_nstring(s, j->st.preview, j->st.preview != NULL ?
		    strlen(j->st.preview) : 0);
		break;
	case FA_THREADID:
		/* No threads are kept: RFC 8474 §5.2 says NIL. */
		imap_write(s, "THREADID NIL", 12);
		break;
	case FA_SECTION:
		section_begin(s, j, i);
		if (j->is_streaming)
			return;	/* att moves on once it is sent */
		break;
	}
	j->att++;
}

/* Writes replies while the output has room. */
static void
fetch_pump(struct imap_session *s)
{
	struct fetch_job *j = s->job;

	while (net_conn_pending(s->conn) < NET_DRAIN_LOW) {
		if (j->is_streaming) {
			errno = 0;
			if (stream_step(s, j) < 0)
				return;
			continue;
		}
		if (!j->is_msg_open) {
			int rc;

			if (j->pos == j->n) {
				fetch_finish(s, j);
				return;
			}
			rc = msg_open(s, j);
			if (rc < 0)
				return;
			if (rc == 0) {
				j->pos++;
				continue;
			}
		}
		item_step(s, j);
	}
	/* The output is full: job_drained carries on. */
}

static void
fetch_drained(struct imap_session *s)
{
	struct fetch_job *j = s->job;

	if (j != NULL && j->phase == FETCH_PHASE_RUN)
		fetch_pump(s);
}

/* ---- \Seen -------------------------------------------------------------- */

static void
seen_done(void *arg, const struct store_change_result *r)
{
	struct imap_session *s = arg;
	struct fetch_job *j;
	bool *is_found;

	if (!imap_resumed(s))
		return;
	j = s->job;
	if (r->err != STORE_OK && r->err != STORE_MODIFIED) {
		log_error(s->sid, "imap.fetch_seen error=\"%s\"",
		    store_err_text(r->err));
		imap_done(s, "NO", "[%s] Cannot set \\Seen: %s",
		    store_err_code(r->err), store_err_text(r->err));
		return;
	}
	/* The replies show the FLAGS of these messages: as the store has
	 * them, or failing that as this change made them. */
	is_found = xcalloc(j->n > 0 ? j->n : 1, sizeof(*is_found));
	if (imap_store_reread(s, j->idx, j->n, j->is_seen_set, is_found) < 0)
		memcpy(is_found, j->is_seen_set, j->n * sizeof(*is_found));
	for (size_t k = 0; k < j->n; k++) {
		const struct imap_msg *m = &s->view->msgs[j->idx[k]];

		if (!j->is_seen_set[k] || !is_found[k] ||
		    (m->flags & STORE_FLAG_SEEN))
			continue;
		imap_view_update(s->view, j->idx[k], m->flags | STORE_FLAG_SEEN,
		    imap_view_keywords(s->view, j->idx[k]), r->modseq);
	}
	free(is_found);
	s->view->is_stale = true;
	j->phase = FETCH_PHASE_RUN;
	fetch_pump(s);
}

/* RFC 9051 §6.4.5: BODY[...] and BINARY[...] (not their .PEEK forms),
 * RFC822 and RFC822.TEXT set \Seen, unless the mailbox is read-only.
 * Returns 0 when the change was submitted (seen_done runs), 1 when none
 * is needed, -1 on failure (imap_done called). */
static int
seen_submit(struct imap_session *s, struct fetch_job *j)
{
	struct store_change c;

	/* Without "s" the implicit \Seen is skipped (RFC 4314 §4). */
	if (!j->has_seen_att || s->view->is_readonly ||
	    !(s->view->rights & STORE_ACL_SEEN))
		return 1;
	j->seen_uids = xcalloc(j->n > 0 ? j->n : 1, sizeof(*j->seen_uids));
	for (size_t k = 0; k < j->n; k++) {
		const struct imap_msg *m = &s->view->msgs[j->idx[k]];

		if (m->is_expunged || (m->flags & STORE_FLAG_SEEN))
			continue;
		j->is_seen_set[k] = true;
		j->seen_uids[j->nseen++] = m->uid;
	}
	if (j->nseen == 0)
		return 1;
	memset(&c, 0, sizeof(c));
	c.mailbox = s->view->mailbox;
	c.uids = j->seen_uids;
	c.nuids = j->nseen;
	c.kind = STORE_CHANGE_FLAGS;
	c.mode = STORE_FLAGS_ADD;
	c.flags = STORE_FLAG_SEEN;
	j->phase = FETCH_PHASE_SEEN;
	imap_wait(s);
	if (store_change_submit(s->ctx->store, &c, s->base, seen_done, s) < 0) {
		(void)imap_resumed(s);
		imap_done(s, "NO", "[UNAVAILABLE] The server is shutting down");
		return -1;
	}
	return 0;
}

/* ---- QRESYNC VANISHED (EARLIER) ------------------------------------------ */

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool
is_saved_uid(const struct imap_view *v, uint32_t uid)
{
	return bsearch(&uid, v->saved, v->nsaved, sizeof(*v->saved),
	    uid_cmp) != NULL;
}

/* RFC 7162 §3.2.6: the UIDs of the set expunged since modseq, as one
 * "* VANISHED (EARLIER)" before the FETCH replies. UIDs the view still
 * holds are left to the session's own VANISHED. Returns 0, or -1 with
 * *err_out set. */
static int
vanished_write(struct imap_session *s, const char *set_atom,
    uint64_t modseq, enum store_err *err_out)
{
	struct imap_view *v = s->view;
	struct store_msg *changed = NULL;
	uint32_t *gone = NULL;
	size_t nchanged = 0, ngone = 0, n = 0;
	struct imap_seqset set;
	char *text;

	if (imap_seqset_parse(set_atom, strlen(set_atom) / 2 + 1, &set) < 0)
		return 0;	/* imap_view_set accepted it: cannot happen */
	if (!set.is_saved)
		imap_seqset_resolve(&set, v->uidnext > 0 ? v->uidnext - 1 : 0);
	if (store_msg_changes(s->ctx->store, v->mailbox, modseq, &changed,
	    &nchanged, &gone, &ngone, NULL, err_out) < 0) {
		imap_seqset_deinit(&set);
		return -1;
	}
	store_msg_list_free(&changed, nchanged);
	qsort(gone, ngone, sizeof(*gone), uid_cmp);
	for (size_t i = 0; i < ngone; i++) {
		bool is_member = set.is_saved ? is_saved_uid(v, gone[i]) :
		    is_imap_seqset_member(&set, gone[i]);

		if (!is_member || imap_view_find(v, gone[i]) != SIZE_MAX ||
		    (n > 0 && gone[n - 1] == gone[i]))
			continue;
		gone[n++] = gone[i];
	}
	if (n > 0) {
		text = imap_fetch_set_format(gone, n);
		imap_printf(s, "* VANISHED (EARLIER) %s\r\n", text);
		free(text);
	}
	free(gone);
	imap_seqset_deinit(&set);
	return 0;
}

/* ---- The command --------------------------------------------------------- */

/* fetch-modifiers (RFC 7162 §3.1.4, §3.2.6): "(" CHANGEDSINCE n
 * [VANISHED] ")" in any order. Returns NULL, or the BAD text. */
static const char *
modifiers_parse(struct imap_session *s, const struct imap_cmd *cmd,
    const struct imap_arg *a, bool *has_changedsince_out,
    uint64_t *changedsince_out, bool *is_vanished_out)
{
	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return "Expected FETCH modifiers in parentheses";
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *m = &a->list[i];

		if (is_imap_arg_atom(m, "CHANGEDSINCE") && i + 1 < a->len &&
		    !*has_changedsince_out) {
			if (!imap_arg_number64(&a->list[i + 1],
			    changedsince_out))
				return "CHANGEDSINCE needs a mod-sequence";
			*has_changedsince_out = true;
			i++;
		} else if (is_imap_arg_atom(m, "VANISHED") &&
		    !*is_vanished_out) {
			*is_vanished_out = true;
		} else {
			return "Unknown FETCH modifier";
		}
	}
	/* RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE,
	 * once QRESYNC is enabled. */
	if (*is_vanished_out && (!cmd->is_uid || !s->is_qresync))
		return "VANISHED needs UID FETCH and ENABLE QRESYNC";
	if (*is_vanished_out && !*has_changedsince_out)
		return "VANISHED needs CHANGEDSINCE";
	return NULL;
}

void
imap_cmd_fetch(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct fetch_job *j;
	bool has_changedsince = false, is_vanished = false;
	uint64_t changedsince = 0;
	const char *bad;
	enum store_err err;
	size_t kept;
	int rc;

	if (cmd->nargs < 2 || cmd->nargs > 3 ||
	    cmd->args[0].kind != IMAP_ARG_ATOM) {
		imap_done(s, "BAD", "Expected a sequence set and FETCH items");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->fd = -1;
	/* A list holds at most its length of items; a macro five. */
	j->cap = cmd->args[1].kind == IMAP_ARG_LIST ? cmd->args[1].len : 5;
	if (j->cap > FETCH_ATTS_MAX)
		j->cap = FETCH_ATTS_MAX;
	j->atts = xcalloc(j->cap > 0 ? j->cap : 1, sizeof(*j->atts));
	j->plans = xcalloc(j->cap > 0 ? j->cap : 1, sizeof(*j->plans));
	if (atts_parse(j, &cmd->args[1]) < 0) {
		fetch_job_free(j);
		imap_done(s, "BAD", "Unknown or malformed FETCH item");
		return;
	}
	if (cmd->nargs == 3 && (bad = modifiers_parse(s, cmd, &cmd->args[2],
	    &has_changedsince, &changedsince, &is_vanished)) != NULL) {
		fetch_job_free(j);
		imap_done(s, "BAD", "%s", bad);
		return;
	}
	rc = imap_view_set(s, &cmd->args[0], cmd->is_uid, &j->idx, &j->n);
	if (rc < 0) {
		fetch_job_free(j);
		imap_done(s, "BAD", rc == -2 ? "No message has that sequence "
		    "number" : "Invalid sequence set");
		return;
	}
	j->has_uid = has_att(j, FA_UID);
	j->has_flags = has_att(j, FA_FLAGS);
	j->has_modseq = has_att(j, FA_MODSEQ);
	j->needs_meta = j->needs_structure || has_att(j, FA_INTERNALDATE) ||
	    has_att(j, FA_SIZE) || has_att(j, FA_EMAILID) ||
	    has_att(j, FA_SAVEDATE);
	/* RFC 7162 §3.1: CHANGEDSINCE and MODSEQ enable CONDSTORE; the
	 * mailbox selected before learns its HIGHESTMODSEQ now (as SEARCH
	 * and SORT say it; imaptest's esearch-condstore). */
	if ((has_changedsince || j->has_modseq) && !s->is_condstore) {
		s->is_condstore = true;
		imap_printf(s, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n",
		    s->view->modseq);
	}
	if (has_changedsince) {
		/* RFC 7162 §3.1.4.1: only messages changed since. */
		kept = 0;
		for (size_t k = 0; k < j->n; k++)
			if (imap_view_modseq(s, j->idx[k]) > changedsince)
				j->idx[kept++] = j->idx[k];
		j->n = kept;
	}
	j->is_seen_set = xcalloc(j->n > 0 ? j->n : 1,
	    sizeof(*j->is_seen_set));
	j->in = xmalloc(IMAP_FETCH_CHUNK);
	j->out = xmalloc(IMAP_FETCH_CHUNK + IMAP_FILTER_SLACK);
	j->phase = FETCH_PHASE_RUN;
	s->job = j;
	s->job_drained = fetch_drained;
	s->job_free = fetch_job_free;

	if (is_vanished && vanished_write(s, cmd->args[0].str, changedsince,
	    &err) < 0) {
		log_error(s->sid, "imap.fetch_vanished error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[%s] Cannot read the expunged messages: %s",
		    store_err_code(err), store_err_text(err));
		return;
	}
	if (seen_submit(s, j) != 1)
		return;
	fetch_pump(s);
}
