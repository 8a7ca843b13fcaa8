/*
 * store_sqlite_search: store_search() for the embedded backend. The
 * condition tree (already checked by store.c) becomes one SQL expression
 * over the mailbox's messages, with every value bound as a parameter.
 *
 * Text conditions (RFC 9051 §6.4.4 BODY, TEXT, HEADER and the keys that
 * map onto HEADER) narrow first with the trigram index: a message can only
 * contain the string if it contains every trigram of it, so "all of these
 * trigrams" (at most TRIGRAMS_MAX of them, spread over the string) picks a
 * superset; the exact, case-insensitive substring test then runs on each
 * candidate only. Messages the background indexer has not reached yet
 * (blob > fts_upto) are always candidates, so a search never misses a
 * new message. Strings shorter than three characters cannot use the
 * index and are tested on every message of the mailbox. Any thread.
 */
#include "store/store_sqlite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

/* Trigrams asked of the index per string: more narrow better but each
 * costs a posting-list merge. */
#define TRIGRAMS_MAX 8

struct arg {
	bool is_text;
	int64_t i;
	char *text;		/* owned */
};

struct query {
	char *sql;
	size_t len, cap;
	struct arg *args;
	size_t nargs;
	bool has_fts;
};

static void
q_add(struct query *q, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(q->sql + q->len, q->cap - q->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			panic("store_search: vsnprintf");
		if ((size_t)n < q->cap - q->len)
			break;
		q->cap = q->cap * 2 + (size_t)n;
		q->sql = xrealloc(q->sql, q->cap);
	}
	q->len += (size_t)n;
}

/* Appends "?N" bound to an integer. */
static void
q_int(struct query *q, int64_t v)
{
	q->args = xrealloc(q->args, (q->nargs + 1) * sizeof(*q->args));
	q->args[q->nargs++] = (struct arg){ .i = v };
	q_add(q, "?%zu", q->nargs);
}

/* Appends "?N" bound to a copy of text. */
static void
q_text(struct query *q, const char *text, size_t len)
{
	q->args = xrealloc(q->args, (q->nargs + 1) * sizeof(*q->args));
	q->args[q->nargs++] = (struct arg){ .is_text = true,
	    .text = xstrndup(text, len) };
	q_add(q, "?%zu", q->nargs);
}

/* Length of the UTF-8 character at s (s is valid UTF-8). */
static size_t
char_len(const char *s)
{
	unsigned char c = (unsigned char)*s;

	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Writes text[from, to) to q as an FTS5 string (a double quote is
 * doubled inside quotes); returns the bytes written. */
static size_t
fts_string(char *q, const char *text, size_t from, size_t to)
{
	size_t n = 0;

	q[n++] = '"';
	for (size_t b = from; b < to; b++) {
		if (text[b] == '"')
			q[n++] = '"';
		q[n++] = text[b];
	}
	q[n++] = '"';
	return n;
}

/* The FTS5 query for text: up to TRIGRAMS_MAX of its trigrams, spread
 * evenly from the first to the last, each a quoted string, joined by
 * AND. NULL when the index cannot help (fewer than three characters). */
static char *
fts_query(const char *text)
{
	size_t len = strlen(text), nchars = 0, ntri, npick, qlen = 0;
	size_t *starts;
	char *q;

	if (!is_store_utf8(text, len))
		return NULL;
	starts = xmalloc((len + 1) * sizeof(*starts));
	for (size_t i = 0; i < len; i += char_len(text + i))
		starts[nchars++] = i;
	starts[nchars] = len;
	if (nchars < 3) {
		free(starts);
		return NULL;
	}
	ntri = nchars - 2;
	npick = ntri < TRIGRAMS_MAX ? ntri : TRIGRAMS_MAX;
	/* A trigram is at most 12 bytes, 24 quoted, plus its quotes and
	 * " AND ". */
	q = xmalloc(npick * (24 + 2 + 5) + 1);
	for (size_t j = 0; j < npick; j++) {
		size_t t = npick == 1 ? 0 : j * (ntri - 1) / (npick - 1);

		if (j > 0) {
			memcpy(q + qlen, " AND ", 5);
			qlen += 5;
		}
		qlen += fts_string(q + qlen, text, starts[t], starts[t + 3]);
	}
	q[qlen] = '\0';
	free(starts);
	return q;
}

/* Opens "(candidate AND " for a text condition when the index helps. */
static bool
q_narrow(struct query *q, const char *text)
{
	char *match;

	if (!q->has_fts || (match = fts_query(text)) == NULL)
		return false;
	q_add(q, "((m.blob > (SELECT value FROM meta WHERE key = 'fts_upto')"
	    " OR m.blob IN (SELECT rowid FROM fts WHERE fts MATCH ");
	q_text(q, match, strlen(match));
	q_add(q, ")) AND ");
	free(match);
	return true;
}

/* The decoded column of structures that holds a header field, if any. */
static const char *
decoded_column(const char *field)
{
	static const char *const map[][2] = {
		{ "subject", "subject" }, { "from", "from_" },
		{ "to", "to_" }, { "cc", "cc" }, { "bcc", "bcc" },
	};

	for (size_t i = 0; i < ARRAY_LEN(map); i++) {
		if (strcasecmp(field, map[i][0]) == 0)
			return map[i][1];
	}
	return NULL;
}

static void
q_cond(struct query *q, const struct store_cond *c)
{
	const char *sep, *column;
	bool is_narrowed;

	switch (c->kind) {
	case STORE_COND_ALL:
		q_add(q, "1");
		return;
	case STORE_COND_AND:
	case STORE_COND_OR:
		if (c->nchildren == 0) {
			q_add(q, c->kind == STORE_COND_AND ? "1" : "0");
			return;
		}
		sep = c->kind == STORE_COND_AND ? " AND " : " OR ";
		q_add(q, "(");
		for (size_t i = 0; i < c->nchildren; i++) {
			if (i > 0)
				q_add(q, "%s", sep);
			q_cond(q, &c->children[i]);
		}
		q_add(q, ")");
		return;
	case STORE_COND_NOT:
		q_add(q, "NOT (");
		q_cond(q, &c->children[0]);
		q_add(q, ")");
		return;
	case STORE_COND_UID_RANGE:
		q_add(q, "m.uid BETWEEN ");
		q_int(q, (int64_t)c->n);
		q_add(q, " AND ");
		q_int(q, (int64_t)c->hi);
		return;
	case STORE_COND_FLAG_SET:
		q_add(q, "(m.flags & ");
		q_int(q, (int64_t)(c->n & 0xffffffff));
		q_add(q, ") = ");
		q_int(q, (int64_t)(c->n & 0xffffffff));
		return;
	case STORE_COND_FLAG_UNSET:
		q_add(q, "(m.flags & ");
		q_int(q, (int64_t)(c->n & 0xffffffff));
		q_add(q, ") = 0");
		return;
	case STORE_COND_KEYWORD:
	case STORE_COND_NO_KEYWORD:
		q_add(q, "%spostern_keyword(m.keywords, ",
		    c->kind == STORE_COND_NO_KEYWORD ? "NOT " : "");
		q_text(q, c->text, strlen(c->text));
		q_add(q, ")");
		return;
	case STORE_COND_INTERNAL_BEFORE:
	case STORE_COND_INTERNAL_SINCE:
		q_add(q, "m.internal_date %s ",
		    c->kind == STORE_COND_INTERNAL_BEFORE ? "<" : ">=");
		q_int(q, (int64_t)c->n);
		return;
	case STORE_COND_SENT_BEFORE:
	case STORE_COND_SENT_SINCE:
		/* A message without a usable Date: is dated by its
		 * internal date. */
		/* RFC 3501 §6.4.4: the Date: header's date "disregarding
		 * time and timezone": its clock reading (date_local) against
		 * midnight; rows from before schema 11 have only the UTC
		 * instant. */
		q_add(q, "coalesce((SELECT coalesce(s.date_local, s.date) "
		    "FROM structures s "
		    "WHERE s.blob = m.blob AND s.date >= 0), m.internal_date) "
		    "%s ", c->kind == STORE_COND_SENT_BEFORE ? "<" : ">=");
		q_int(q, (int64_t)c->n);
		return;
	case STORE_COND_SAVED_BEFORE:
	case STORE_COND_SAVED_SINCE:
		/* A message saved before postern kept save dates is dated
		 * by its internal date. */
		q_add(q, "coalesce(m.saved, m.internal_date) %s ",
		    c->kind == STORE_COND_SAVED_BEFORE ? "<" : ">=");
		q_int(q, (int64_t)c->n);
		return;
	case STORE_COND_LARGER:
	case STORE_COND_SMALLER:
		q_add(q, "m.size %s ", c->kind == STORE_COND_LARGER ? ">" :
		    "<");
		q_int(q, (int64_t)c->n);
		return;
	case STORE_COND_MODSEQ:
		q_add(q, "m.modseq >= ");
		q_int(q, (int64_t)c->n);
		return;
	case STORE_COND_HEADER:
		is_narrowed = *c->text != '\0' && q_narrow(q, c->text);
		q_add(q, "(postern_header((SELECT headers FROM texts "
		    "WHERE blob = m.blob), ");
		q_text(q, c->field, strlen(c->field));
		q_add(q, ", ");
		q_text(q, c->text, strlen(c->text));
		q_add(q, ")");
		/* The decoded value too, so that RFC 2047 words match as
		 * the user reads them. */
		column = decoded_column(c->field);
		if (column != NULL && *c->text != '\0') {
			q_add(q, " OR postern_contains((SELECT %s FROM "
			    "structures WHERE blob = m.blob), ", column);
			q_text(q, c->text, strlen(c->text));
			q_add(q, ")");
		}
		q_add(q, is_narrowed ? "))" : ")");
		return;
	case STORE_COND_BODY:
		is_narrowed = q_narrow(q, c->text);
		q_add(q, "postern_contains((SELECT body FROM texts "
		    "WHERE blob = m.blob), ");
		q_text(q, c->text, strlen(c->text));
		q_add(q, is_narrowed ? "))" : ")");
		return;
	case STORE_COND_TEXT:
		is_narrowed = q_narrow(q, c->text);
		q_add(q, "(postern_contains((SELECT headers FROM texts "
		    "WHERE blob = m.blob), ");
		q_text(q, c->text, strlen(c->text));
		q_add(q, ") OR postern_contains((SELECT body FROM texts "
		    "WHERE blob = m.blob), ");
		q_text(q, c->text, strlen(c->text));
		q_add(q, is_narrowed ? ")))" : "))");
		return;
	}
	panic("store_search: condition kind %d", (int)c->kind);
}

static void
query_deinit(struct query *q)
{
	for (size_t i = 0; i < q->nargs; i++)
		free(q->args[i].text);
	free(q->args);
	free(q->sql);
}

static bool
is_modseq_led(const struct store_cond *cond)
{
	if (cond->kind == STORE_COND_MODSEQ)
		return true;
	if (cond->kind != STORE_COND_AND)
		return false;
	for (size_t i = 0; i < cond->nchildren; i++)
		if (cond->children[i].kind == STORE_COND_MODSEQ)
			return true;
	return false;
}

int
sq_search(struct store *st, int64_t mailbox, const struct store_cond *cond,
    uint32_t **uids_out, size_t *n_out, enum store_err *err_out)
{
	struct query q = { .cap = 256, .has_fts = sq_state(st)->has_fts };
	struct sq_conn *c;
	sqlite3_stmt *s = NULL, *exists;
	size_t cap = 0;
	int rc;

	q.sql = xmalloc(q.cap);
	q.sql[0] = '\0';
	/* Without statistics the planner walks the whole mailbox by UID
	 * even for MODSEQ (a QRESYNC client asking what changed): name
	 * the index when every match needs it (100,000 messages: 6 ms to
	 * 0.04 ms), not under OR or NOT, where it would be worse. */
	q_add(&q, "SELECT m.uid FROM messages m %sWHERE m.mailbox = ",
	    is_modseq_led(cond) ? "INDEXED BY messages_modseq " : "");
	q_int(&q, mailbox);
	q_add(&q, " AND ");
	q_cond(&q, cond);
	q_add(&q, " ORDER BY m.uid");
	if ((c = sq_reader_get(st)) == NULL) {
		query_deinit(&q);
		*err_out = STORE_TEMP;
		return -1;
	}
	/* One snapshot for the existence check and the search. */
	sq_exec(c, SQ_BEGIN_READ);
	exists = sq_stmt(c, SQ_MAILBOX_EXISTS);
	rc = SQLITE_ERROR;
	if (exists != NULL) {
		sqlite3_bind_int64(exists, 1, mailbox);
		rc = sqlite3_step(exists);
		sq_reset(exists);
	}
	if (rc == SQLITE_DONE) {
		*err_out = STORE_NOT_FOUND;
		goto out;
	}
	if (rc == SQLITE_ROW)
		rc = sqlite3_prepare_v2(c->db, q.sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		*err_out = sq_err(c, rc, "search_prepare");
		goto out;
	}
	for (size_t i = 0; i < q.nargs; i++) {
		if (q.args[i].is_text)
			sqlite3_bind_text(s, (int)i + 1, q.args[i].text, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, (int)i + 1, q.args[i].i);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 256;
			*uids_out = xrealloc(*uids_out,
			    cap * sizeof(**uids_out));
		}
		(*uids_out)[(*n_out)++] = (uint32_t)sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "search");
		free(*uids_out);
		*uids_out = NULL;
		*n_out = 0;
		goto out;
	}
	*err_out = STORE_OK;
out:
	sqlite3_finalize(s);
	sq_exec(c, SQ_ROLLBACK);
	sq_reader_put(st, c);
	query_deinit(&q);
	return *err_out == STORE_OK ? 0 : -1;
}

int
sq_sort_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
    size_t *n_out, enum store_err *err_out)
{
	struct sq_conn *c = sq_reader_get(st);
	sqlite3_stmt *s, *exists;
	size_t cap = 0;
	int rc = SQLITE_ERROR;

	if (c == NULL) {
		*err_out = STORE_TEMP;
		return -1;
	}
	/* One snapshot for the existence check and the rows. */
	sq_exec(c, SQ_BEGIN_READ);
	exists = sq_stmt(c, SQ_MAILBOX_EXISTS);
	if (exists != NULL) {
		sqlite3_bind_int64(exists, 1, mailbox);
		rc = sqlite3_step(exists);
		sq_reset(exists);
	}
	if (rc == SQLITE_DONE) {
		*err_out = STORE_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW || (s = sq_stmt(c, SQ_SORT_LIST)) == NULL) {
		*err_out = sq_err(c, rc == SQLITE_ROW ? SQLITE_ERROR : rc,
		    "sort_list");
		goto out;
	}
	sqlite3_bind_int64(s, 1, mailbox);
	sqlite3_bind_int64(s, 2, uid_min);
	sqlite3_bind_int64(s, 3, uid_max);
	sqlite3_bind_int64(s, 4, what);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_sort_msg *m;

		if (*n_out == cap) {
			cap = cap ? cap * 2 : 256;
			*list_out = xrealloc(*list_out, cap *
			    sizeof(**list_out));
		}
		m = &(*list_out)[(*n_out)++];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)sqlite3_column_int64(s, 0);
		m->internal_date = sqlite3_column_int64(s, 1);
		m->size = (uint64_t)sqlite3_column_int64(s, 2);
		m->date = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(s, 3);
		m->subject = sq_text(s, 4);
		m->envelope = sq_text(s, 5);
		m->message_id = sq_text(s, 6);
		m->in_reply_to = sq_text(s, 7);
		m->references = sq_text(s, 8);
		m->blob = sqlite3_column_int64(s, 9);
		m->is_ids_unknown = sqlite3_column_int(s, 10) != 0;
		if (m->references != NULL && m->references[0] == '\0') {
			free(m->references);
			m->references = NULL;
		}
	}
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		*err_out = sq_err(c, rc, "sort_list");
		store_sort_list_free(list_out, *n_out);
		*n_out = 0;
		goto out;
	}
	*err_out = STORE_OK;
out:
	sq_exec(c, SQ_ROLLBACK);
	sq_reader_put(st, c);
	return *err_out == STORE_OK ? 0 : -1;
}
