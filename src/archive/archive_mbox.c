/*
 * archive_mbox: the mbox reader (an incremental splitter fed bytes) and
 * writer. A message starts at a "From " line that follows a blank line (or
 * starts the file) and reads as "From SENDER DATE" with an asctime date, as
 * mutt's is_from() asks: a "From " line in a body that a careless writer
 * left unquoted rarely has both, so it stays text. The blank line before a
 * separator belongs to the separator (RFC 4155 §2). Quoting is mboxrd by
 * default (one '>' comes off every ">*From " line; the writer adds one);
 * mboxo takes it off ">From " only.
 *
 * Dovecot keeps a message's flags in headers of the mbox file that it
 * hides from IMAP (Status:, X-Status:, X-Keywords:, X-UID:, X-IMAP:,
 * X-IMAPbase:, Content-Length:); the reader turns them into flags and
 * keywords and leaves them out of the message, the writer adds them back.
 * Lines are held up to ARCHIVE_MBOX_LINE_MAX bytes; longer ones go through
 * in pieces, so that no input makes the reader hold more.
 */
#include "archive/archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"
#include "store/store.h"

enum long_mode {
	LONG_NONE,
	LONG_EMIT,	/* the rest of a long line goes to the message */
	LONG_DROP,	/* ... is dropped (a hidden header) */
};

enum hidden {
	HIDDEN_NONE,
	HIDDEN_DROP,		/* a hidden field and its continuations */
	HIDDEN_KEYWORDS,	/* X-Keywords: the continuations count */
};

struct archive_mbox {
	enum archive_mbox_kind kind;
	const struct archive_mbox_cb *cb;
	void *arg;
	char line[ARCHIVE_MBOX_LINE_MAX];
	size_t len;
	uint64_t line_no;	/* of the line being read, 1-based */
	uint64_t line_off;	/* its first byte */
	uint64_t off;		/* bytes fed */
	enum long_mode long_mode;
	bool is_in_msg, is_in_header, is_prev_blank, is_failed;
	char held[2];		/* a blank line that may be a separator's */
	size_t nheld;
	enum hidden hidden;
	uint32_t flags;
	bool is_pseudo;
	char kw[ARCHIVE_KEYWORDS_MAX + 1];
	size_t kwlen;
	char *error;
	uint64_t err_line, err_off;
};

static const char *const weekdays[] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
};
static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	"Nov", "Dec",
};

static int
name_index(const char *const *names, size_t n, const char *s, size_t len)
{
	if (len != 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strncasecmp(names[i], s, 3) == 0)
			return (int)i;
	}
	return -1;
}

/* Reads digits of s[0..len) into *v; true when all of it is 1..max_len
 * digits. */
static bool
digits(const char *s, size_t len, size_t max_len, int *v)
{
	*v = 0;
	if (len == 0 || len > max_len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

#define FROM_TOKENS 32

bool
is_archive_mbox_from(const char *line, size_t n, int64_t *date_out)
{
	const char *tok[FROM_TOKENS];
	size_t tlen[FROM_TOKENS], nt = 0, i = 5;
	struct tm tm;
	int day, hh, mm, ss = 0, year, zone = 0, v;

	*date_out = 0;
	if (n < 5 || memcmp(line, "From ", 5) != 0)
		return false;
	while (i < n && nt < FROM_TOKENS) {
		size_t start;

		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && line[i] != ' ' && line[i] != '\t')
			i++;
		tok[nt] = line + start;
		tlen[nt++] = i - start;
	}
	/* The date is the first "Www Mmm" pair: senders have no spaces in
	 * practice, but a quoted one may. */
	for (size_t t = 0; t + 4 < nt; t++) {
		size_t y;

		if (name_index(weekdays, 7, tok[t], tlen[t]) < 0)
			continue;
		memset(&tm, 0, sizeof(tm));
		tm.tm_mon = name_index(months, 12, tok[t + 1], tlen[t + 1]);
		if (tm.tm_mon < 0)
			continue;
		if (!digits(tok[t + 2], tlen[t + 2], 2, &day) || day < 1 ||
		    day > 31)
			continue;
		/* hh:mm or hh:mm:ss */
		if (tlen[t + 3] != 5 && tlen[t + 3] != 8)
			continue;
		if (!digits(tok[t + 3], 2, 2, &hh) || tok[t + 3][2] != ':' ||
		    !digits(tok[t + 3] + 3, 2, 2, &mm) || hh > 23 || mm > 59)
			continue;
		if (tlen[t + 3] == 8 && (tok[t + 3][5] != ':' ||
		    !digits(tok[t + 3] + 6, 2, 2, &ss) || ss > 60))
			continue;
		/* The year, maybe after a zone name ("CET 2026"). */
		y = t + 4;
		if (y < nt && !digits(tok[y], tlen[y], 4, &v))
			y++;
		if (y >= nt || !digits(tok[y], tlen[y], 4, &year) ||
		    tlen[y] != 4 || year < 1900)
			continue;
		/* A numeric zone after the year ("2026 +0100"). */
		if (y + 1 < nt && tlen[y + 1] == 5 &&
		    (tok[y + 1][0] == '+' || tok[y + 1][0] == '-') &&
		    digits(tok[y + 1] + 1, 4, 4, &v) && v % 100 < 60)
			zone = (tok[y + 1][0] == '-' ? -1 : 1) *
			    ((v / 100) * 3600 + (v % 100) * 60);
		tm.tm_mday = day;
		tm.tm_hour = hh;
		tm.tm_min = mm;
		tm.tm_sec = ss;
		tm.tm_year = year - 1900;
		*date_out = (int64_t)timegm(&tm) - zone;
		return true;
	}
	return false;
}

static bool
is_sender_plain(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 127)
			return false;
	}
	return true;
}

size_t
archive_mbox_from_format(char *out, size_t cap, const char *sender,
    int64_t date)
{
	struct tm tm;
	time_t t = (time_t)date;
	int n;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 1900) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	n = snprintf(out, cap, "From %s %s %s %2d %02d:%02d:%02d %d\n",
	    is_sender_plain(sender) ? sender : "MAILER-DAEMON",
	    weekdays[tm.tm_wday], months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---- Reader ----------------------------------------------------------- */

struct archive_mbox *
archive_mbox_new(enum archive_mbox_kind kind, const struct archive_mbox_cb *cb,
    void *arg)
{
	struct archive_mbox *m = xcalloc(1, sizeof(*m));

	m->kind = kind;
	m->cb = cb;
	m->arg = arg;
	m->line_no = 1;
	m->is_prev_blank = true;	/* the start of the file */
	return m;
}

void
archive_mbox_free(struct archive_mbox **mp)
{
	if (*mp == NULL)
		return;
	free((*mp)->error);
	free(*mp);
	*mp = NULL;
}

void
archive_mbox_set_error(struct archive_mbox *m, const char *error)
{
	if (m->error != NULL)
		return;
	m->error = xstrdup(error);
	m->err_line = m->line_no;
	m->err_off = m->line_off;
}

const char *
archive_mbox_error(const struct archive_mbox *m, uint64_t *line_out,
    uint64_t *offset_out)
{
	*line_out = m->err_line;
	*offset_out = m->err_off;
	return m->error != NULL ? m->error : "unknown error";
}

static int
fail(struct archive_mbox *m, const char *error)
{
	archive_mbox_set_error(m, error);
	m->is_failed = true;
	return -1;
}

static int
emit(struct archive_mbox *m, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (m->cb->data(m->arg, p, n) < 0)
		return fail(m, "stopped");
	return 0;
}

static int
flush_held(struct archive_mbox *m)
{
	size_t n = m->nheld;

	m->nheld = 0;
	return emit(m, m->held, n);
}

/* Adds the keywords of an X-Keywords: value (spaces or commas between
 * them; Dovecot writes spaces) that are IMAP flag atoms (RFC 9051 §9
 * flag-keyword); others are dropped. */
static void
keywords_add(struct archive_mbox *m, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t start, len;
		bool ok = true;

		while (i < n && strchr(" \t,\r\n", p[i]) != NULL)
			i++;
		start = i;
		while (i < n && strchr(" \t,\r\n", p[i]) == NULL)
			i++;
		len = i - start;
		if (len == 0)
			break;
		for (size_t j = start; j < i; j++) {
			unsigned char c = (unsigned char)p[j];

			if (c <= ' ' || c >= 127 ||
			    strchr("(){%*\"\\]", c) != NULL)
				ok = false;
		}
		if (!ok || m->kwlen + len + 1 > ARCHIVE_KEYWORDS_MAX)
			continue;
		if (m->kwlen > 0)
			m->kw[m->kwlen++] = ' ';
		memcpy(m->kw + m->kwlen, p + start, len);
		m->kwlen += len;
	}
}

/* Whether line holds field name (case-insensitive) before its ':'. */
static bool
is_field(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && strncasecmp(line, name, k) == 0 && line[k] == ':';
}

/* A header line that is not a continuation: hidden or not. */
static int
header_field(struct archive_mbox *m, const char *line, size_t n,
    size_t content)
{
	static const char *const dropped[] = {
		"X-UID", "X-IMAPbase", "Content-Length",
	};

	m->hidden = HIDDEN_NONE;
	if (is_field(line, content, "Status")) {
		for (size_t i = 7; i < content; i++) {
			if (line[i] == 'R')
				m->flags |= STORE_FLAG_SEEN;
		}
		m->hidden = HIDDEN_DROP;
	} else if (is_field(line, content, "X-Status")) {
		for (size_t i = 9; i < content; i++) {
			switch (line[i]) {
			case 'A':
				m->flags |= STORE_FLAG_ANSWERED;
				break;
			case 'F':
				m->flags |= STORE_FLAG_FLAGGED;
				break;
			case 'T':
				m->flags |= STORE_FLAG_DRAFT;
				break;
			case 'D':
				m->flags |= STORE_FLAG_DELETED;
				break;
			}
		}
		m->hidden = HIDDEN_DROP;
	} else if (is_field(line, content, "X-Keywords")) {
		keywords_add(m, line + 11, content - 11);
		m->hidden = HIDDEN_KEYWORDS;
	} else if (is_field(line, content, "X-IMAP")) {
		/* Dovecot's (and UW's) first message holding the folder's
		 * UIDVALIDITY: not mail. */
		m->is_pseudo = true;
		m->hidden = HIDDEN_DROP;
	} else {
		for (size_t i = 0; i < ARRAY_LEN(dropped); i++) {
			if (is_field(line, content, dropped[i]))
				m->hidden = HIDDEN_DROP;
		}
	}
	if (m->hidden != HIDDEN_NONE)
		return 0;
	return emit(m, line, n);
}

/* The number of '>' to take off the start of line: 1 for a quoted
 * "From " line, else 0. */
static size_t
unquote_len(const struct archive_mbox *m, const char *line, size_t n)
{
	size_t k = 0;

	while (k < n && line[k] == '>')
		k++;
	if (k == 0 || n - k < 5 || memcmp(line + k, "From ", 5) != 0)
		return 0;
	return m->kind == ARCHIVE_MBOXRD || k == 1 ? 1 : 0;
}

static int
msg_begin(struct archive_mbox *m, int64_t date)
{
	struct archive_mbox_from from = {
		.line = m->line_no, .offset = m->line_off, .date = date,
	};

	m->is_in_msg = true;
	m->is_in_header = true;
	m->hidden = HIDDEN_NONE;
	m->flags = 0;
	m->is_pseudo = false;
	m->kwlen = 0;
	m->nheld = 0;
	if (m->cb->begin(m->arg, &from) < 0)
		return fail(m, "stopped");
	return 0;
}

static int
msg_end(struct archive_mbox *m)
{
	struct archive_mbox_msg msg = {
		.flags = m->flags, .is_pseudo = m->is_pseudo,
	};

	/* The blank line held at the end of the file ends the last
	 * message, as one before a separator does. */
	m->nheld = 0;
	m->kw[m->kwlen] = '\0';
	msg.keywords = m->kwlen > 0 ? m->kw : NULL;
	m->is_in_msg = false;
	if (m->cb->end(m->arg, &msg) < 0)
		return fail(m, "stopped");
	return 0;
}

/* A whole line (line end included, if any) of at most LINE_MAX bytes. */
static int
line_done(struct archive_mbox *m, const char *line, size_t n)
{
	size_t content = n;
	int64_t date;
	bool is_blank;

	if (content > 0 && line[content - 1] == '\n')
		content--;
	if (content > 0 && line[content - 1] == '\r')
		content--;
	is_blank = content == 0;
	if (content >= 5 && memcmp(line, "From ", 5) == 0 &&
	    m->is_prev_blank && is_archive_mbox_from(line, content, &date)) {
		if (m->is_in_msg && msg_end(m) < 0)
			return -1;
		m->is_prev_blank = false;
		return msg_begin(m, date);
	}
	if (!m->is_in_msg) {
		if (is_blank)
			return 0;	/* blank lines before the first */
		return fail(m, "not an mbox file: expected a \"From SENDER "
		    "DATE\" line to start a message");
	}
	if (is_blank) {
		m->is_prev_blank = true;
		if (m->is_in_header) {
			m->is_in_header = false;
			m->hidden = HIDDEN_NONE;
			return emit(m, line, n);
		}
		if (flush_held(m) < 0)
			return -1;
		memcpy(m->held, line, n);
		m->nheld = n;
		return 0;
	}
	m->is_prev_blank = false;
	if (flush_held(m) < 0)
		return -1;
	size_t q = unquote_len(m, line, content);

	if (q > 0) {
		m->hidden = HIDDEN_NONE;
		return emit(m, line + q, n - q);
	}
	if (m->is_in_header) {
		if (line[0] == ' ' || line[0] == '\t') {
			if (m->hidden == HIDDEN_KEYWORDS)
				keywords_add(m, line, content);
			if (m->hidden != HIDDEN_NONE)
				return 0;
			return emit(m, line, n);
		}
		return header_field(m, line, n, content);
	}
	return emit(m, line, n);
}

/* The first LINE_MAX bytes of a longer line: the rest follows in
 * pieces. */
static int
line_long(struct archive_mbox *m)
{
	const char *line = m->line;
	size_t n = m->len, q;

	if (!m->is_in_msg)
		return fail(m, "not an mbox file: expected a \"From SENDER "
		    "DATE\" line to start a message");
	m->is_prev_blank = false;
	if (flush_held(m) < 0)
		return -1;
	m->long_mode = LONG_EMIT;
	q = unquote_len(m, line, n);
	if (q > 0) {
		m->hidden = HIDDEN_NONE;
		return emit(m, line + q, n - q);
	}
	if (m->is_in_header) {
		if (line[0] != ' ' && line[0] != '\t') {
			/* Only its name matters; an X-Keywords: this long
			 * keeps what fits. */
			m->hidden = HIDDEN_NONE;
			if (header_field(m, line, n, n) < 0)
				return -1;
		} else if (m->hidden == HIDDEN_NONE) {
			return emit(m, line, n);
		}
		if (m->hidden != HIDDEN_NONE)
			m->long_mode = LONG_DROP;
		return 0;
	}
	return emit(m, line, n);
}

enum parse_rc
archive_mbox_feed(struct archive_mbox *m, const char *data, size_t n)
{
	if (m->is_failed)
		return PARSE_ERROR;
	while (n > 0) {
		const char *lf = memchr(data, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - data) + 1 : n;

		if (m->long_mode != LONG_NONE) {
			if (m->long_mode == LONG_EMIT &&
			    emit(m, data, take) < 0)
				return PARSE_ERROR;
			if (lf != NULL)
				m->long_mode = LONG_NONE;
		} else if (take > ARCHIVE_MBOX_LINE_MAX - m->len) {
			take = ARCHIVE_MBOX_LINE_MAX - m->len;
			memcpy(m->line + m->len, data, take);
			m->len += take;
			lf = NULL;
			if (line_long(m) < 0)
				return PARSE_ERROR;
			m->len = 0;
		} else {
			memcpy(m->line + m->len, data, take);
			m->len += take;
			if (lf != NULL) {
				int rc = line_done(m, m->line, m->len);

				m->len = 0;
				if (rc < 0)
					return PARSE_ERROR;
			}
		}
		data += take;
		n -= take;
		m->off += take;
		if (lf != NULL) {
			m->line_no++;
			m->line_off = m->off;
		}
	}
	return PARSE_MORE;
}

enum parse_rc
archive_mbox_finish(struct archive_mbox *m)
{
	if (m->is_failed)
		return PARSE_ERROR;
	if (m->len > 0) {
		/* A last line without its line end. */
		int rc = line_done(m, m->line, m->len);

		m->len = 0;
		if (rc < 0)
			return PARSE_ERROR;
	}
	m->long_mode = LONG_NONE;
	if (m->is_in_msg && msg_end(m) < 0)
		return PARSE_ERROR;
	return PARSE_DONE;
}

/* ---- Writer ----------------------------------------------------------- */

enum out_state {
	OUT_START,	/* at the start of a line */
	OUT_GT,		/* '>'s seen at the start of a line */
	OUT_FROM,	/* '>'s and part of "From " */
	OUT_TEXT,	/* inside a line */
};

#define OUT_BUF 16384

struct archive_mbox_out {
	int (*write)(void *arg, const char *p, size_t n);
	void *arg;
	uint32_t flags;
	char *keywords;
	struct archive_eol eol;
	enum out_state state;
	uint64_t ngt;		/* '>'s held */
	size_t nfrom;		/* bytes of "From " held */
	bool is_in_header;
	bool is_failed;
	char last;		/* the last byte written */
	char buf[OUT_BUF];
	size_t len;
};

struct archive_mbox_out *
archive_mbox_out_new(uint32_t flags, const char *keywords,
    int (*write)(void *arg, const char *p, size_t n), void *arg)
{
	struct archive_mbox_out *o = xcalloc(1, sizeof(*o));

	o->write = write;
	o->arg = arg;
	o->flags = flags;
	o->keywords = keywords != NULL && *keywords != '\0' ?
	    xstrdup(keywords) : NULL;
	archive_eol_init(&o->eol, true);
	o->state = OUT_START;
	o->is_in_header = true;
	o->last = '\n';
	return o;
}

void
archive_mbox_out_free(struct archive_mbox_out **op)
{
	if (*op == NULL)
		return;
	free((*op)->keywords);
	free(*op);
	*op = NULL;
}

static void
out_flush(struct archive_mbox_out *o)
{
	if (o->len > 0 && !o->is_failed && o->write(o->arg, o->buf, o->len) < 0)
		o->is_failed = true;
	o->len = 0;
}

static void
out_put(struct archive_mbox_out *o, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = OUT_BUF - o->len < n ? OUT_BUF - o->len : n;

		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
		if (o->len == OUT_BUF)
			out_flush(o);
	}
}

static void
out_byte(struct archive_mbox_out *o, char c)
{
	o->buf[o->len++] = c;
	o->last = c;
	if (o->len == OUT_BUF)
		out_flush(o);
}

/* The headers Dovecot writes for flags and keywords (and mutt reads). */
static void
out_status(struct archive_mbox_out *o)
{
	char xs[16];
	size_t n = 0;

	out_put(o, o->flags & STORE_FLAG_SEEN ? "Status: RO\n" : "Status: O\n",
	    o->flags & STORE_FLAG_SEEN ? 11 : 10);
	if (o->flags & STORE_FLAG_ANSWERED)
		xs[n++] = 'A';
	if (o->flags & STORE_FLAG_FLAGGED)
		xs[n++] = 'F';
	if (o->flags & STORE_FLAG_DRAFT)
		xs[n++] = 'T';
	if (o->flags & STORE_FLAG_DELETED)
		xs[n++] = 'D';
	if (n > 0) {
		out_put(o, "X-Status: ", 10);
		out_put(o, xs, n);
		out_put(o, "\n", 1);
	}
	if (o->keywords != NULL) {
		out_put(o, "X-Keywords: ", 12);
		out_put(o, o->keywords, strlen(o->keywords));
		out_put(o, "\n", 1);
	}
}

static void
out_held(struct archive_mbox_out *o)
{
	for (uint64_t i = 0; i < o->ngt; i++)
		out_byte(o, '>');
	if (o->nfrom > 0) {
		out_put(o, "From ", o->nfrom);
		o->last = "From "[o->nfrom - 1];
	}
	o->ngt = 0;
	o->nfrom = 0;
}

static void
out_char(struct archive_mbox_out *o, char c)
{
	switch (o->state) {
	case OUT_START:
		if (c == '\n' && o->is_in_header) {
			/* The header's blank line: the flags go before. */
			out_status(o);
			o->is_in_header = false;
			out_byte(o, c);
			return;
		}
		if (c == '>') {
			o->ngt = 1;
			o->state = OUT_GT;
			return;
		}
		if (c == 'F') {
			o->nfrom = 1;
			o->state = OUT_FROM;
			return;
		}
		break;
	case OUT_GT:
		if (c == '>') {
			o->ngt++;
			return;
		}
		if (c == 'F') {
			o->nfrom = 1;
			o->state = OUT_FROM;
			return;
		}
		out_held(o);
		break;
	case OUT_FROM:
		if (c == "From "[o->nfrom]) {
			if (++o->nfrom < 5)
				return;
			/* A ">*From " line: one more '>' (mboxrd). */
			out_byte(o, '>');
			out_held(o);
			o->state = OUT_TEXT;
			return;
		}
		out_held(o);
		break;
	case OUT_TEXT:
		break;
	}
	out_byte(o, c);
	o->state = c == '\n' ? OUT_START : OUT_TEXT;
}

int
archive_mbox_out_feed(struct archive_mbox_out *o, const char *data, size_t n)
{
	char tmp[4096 * 2 + 1];

	while (n > 0 && !o->is_failed) {
		size_t k = n < 4096 ? n : 4096;
		size_t got = archive_eol_feed(&o->eol, data, k, tmp);

		for (size_t i = 0; i < got; i++)
			out_char(o, tmp[i]);
		data += k;
		n -= k;
	}
	return o->is_failed ? -1 : 0;
}

int
archive_mbox_out_finish(struct archive_mbox_out *o)
{
	char tmp[2];
	size_t got = archive_eol_finish(&o->eol, tmp);

	for (size_t i = 0; i < got; i++)
		out_char(o, tmp[i]);
	if (o->state == OUT_GT || o->state == OUT_FROM)
		out_held(o);
	if (o->is_in_header) {
		/* No blank line: the message is all header. The flags and
		 * a blank line end it, so that a reader finds them. */
		if (o->last != '\n')
			out_byte(o, '\n');
		out_status(o);
		out_byte(o, '\n');
		o->is_in_header = false;
	}
	if (o->last != '\n')
		out_byte(o, '\n');
	/* The blank line that ends an entry (RFC 4155 §2). */
	out_byte(o, '\n');
	out_flush(o);
	return o->is_failed ? -1 : 0;
}
