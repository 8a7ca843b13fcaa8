/*
 * migrate_parser: the IMAP response parser of the migration client (RFC
 * 9051 §7, §9 response grammar). The source server is untrusted: a
 * response is first delimited by a scan that holds no more than line_max
 * bytes of a line and checks each announced literal size against
 * literal_max before a byte of it is kept (the buf's cap bounds the total
 * anyway), so no allocation ever follows a number the server sent; the
 * complete response is then parsed in place into values whose count is
 * bounded by the bytes actually received.
 */
#include "migrate/migrate_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

void
migrate_parser_init(struct migrate_parser *p, size_t line_max,
    size_t literal_max)
{
	memset(p, 0, sizeof(*p));
	p->line_max = line_max;
	p->literal_max = literal_max;
}

void
migrate_parser_deinit(struct migrate_parser *p)
{
	free(p->vals);
	free(p->work);
	memset(p, 0, sizeof(*p));
}

/* Whether the line from start to the LF at lf ends in "{n}" or "{n+}"
 * (CR optional before the LF); sets *n_out. An unreadable size (no digit,
 * too many digits) is not a literal announcement but an error. */
static int
literal_at_end(const char *d, size_t start, size_t lf, size_t *n_out)
{
	size_t e = lf, i;
	uint64_t n = 0;

	if (e > start && d[e - 1] == '\r')
		e--;
	if (e == start || d[e - 1] != '}')
		return 0;
	e--;
	if (e > start && d[e - 1] == '+')
		e--;
	i = e;
	while (i > start && d[i - 1] >= '0' && d[i - 1] <= '9')
		i--;
	if (i == start || d[i - 1] != '{')
		return 0;
	if (i == e || e - i > 19)
		return -1;
	for (size_t k = i; k < e; k++)
		n = n * 10 + (uint64_t)(d[k] - '0');
	*n_out = (size_t)n;
	if ((uint64_t)*n_out != n)
		return -1;
	return 1;
}

/* Finds the end of the response that starts the buf: returns PARSE_DONE
 * with p->end set, PARSE_MORE, or PARSE_ERROR. */
static enum parse_rc
scan(struct migrate_parser *p, const struct buf *in)
{
	const char *d = in->data;

	while (p->off < in->len) {
		if (p->literal_left > 0) {
			size_t take = in->len - p->off;

			if (take > p->literal_left)
				take = p->literal_left;
			p->off += take;
			p->literal_left -= take;
			if (p->literal_left == 0)
				p->line_start = p->off;
			continue;
		}
		char c = d[p->off++];

		p->text_bytes++;
		if (p->off - p->line_start > p->line_max) {
			p->error = "a response line is longer than the limit";
			return PARSE_ERROR;
		}
		if (c == '\n') {
			size_t n = 0;
			int lit = p->is_quoted ? 0 :
			    literal_at_end(d, p->line_start, p->off - 1, &n);

			p->is_quoted = p->is_escaped = false;
			if (lit < 0) {
				p->error = "a literal size is not a number";
				return PARSE_ERROR;
			}
			if (lit == 0) {
				p->end = p->off;
				return PARSE_DONE;
			}
			if (n > p->literal_max) {
				p->error = "a literal is larger than the limit";
				return PARSE_ERROR;
			}
			p->literal_left = n;
			p->line_start = p->off;
			continue;
		}
		if (p->is_escaped)
			p->is_escaped = false;
		else if (p->is_quoted && c == '\\')
			p->is_escaped = true;
		else if (c == '"')
			p->is_quoted = !p->is_quoted;
	}
	return PARSE_MORE;
}

/* ---- Parsing a complete response ------------------------------------- */

struct cursor {
	struct migrate_parser *p;
	char *d;
	size_t i, end;
};

static struct migrate_val *
val_new(struct cursor *c, enum migrate_val_kind kind)
{
	struct migrate_val *v;

	/* vals_cap was sized from the bytes scanned: every value takes at
	 * least one byte of text. */
	if (c->p->nvals == c->p->vals_cap)
		return NULL;
	v = &c->p->vals[c->p->nvals++];
	memset(v, 0, sizeof(*v));
	v->kind = kind;
	return v;
}

static bool
is_atom_char(char c)
{
	return c != ' ' && c != '(' && c != ')' && c != '"' && c != '{' &&
	    c != '\r' && c != '\n' && c != '\0' && (unsigned char)c > 0x1f &&
	    c != 0x7f;
}

static struct migrate_val *value(struct cursor *c, int depth);

/* A list's items up to its ")" (or the line's end when depth is 0). */
static int
items(struct cursor *c, struct migrate_val *list, int depth)
{
	struct migrate_val **tail = &list->kid;

	for (;;) {
		while (c->i < c->end && c->d[c->i] == ' ')
			c->i++;
		if (c->i >= c->end)
			return -1;
		if (c->d[c->i] == ')') {
			if (depth == 0)
				return -1;
			c->i++;
			return 0;
		}
		if (c->d[c->i] == '\r' || c->d[c->i] == '\n') {
			if (depth != 0)
				return -1;
			return 0;
		}
		struct migrate_val *v = value(c, depth);

		if (v == NULL)
			return -1;
		*tail = v;
		tail = &v->next;
		list->n++;
	}
}

static struct migrate_val *
value(struct cursor *c, int depth)
{
	struct migrate_val *v;
	char ch = c->d[c->i];

	if (ch == '(') {
		if (depth >= MIGRATE_DEPTH_MAX ||
		    (v = val_new(c, MIGRATE_VAL_LIST)) == NULL)
			return NULL;
		c->i++;
		return items(c, v, depth + 1) == 0 ? v : NULL;
	}
	if (ch == '"') {
		size_t o;

		if ((v = val_new(c, MIGRATE_VAL_STRING)) == NULL)
			return NULL;
		o = ++c->i;
		v->s = c->d + o;
		for (;;) {
			if (c->i >= c->end)
				return NULL;
			ch = c->d[c->i++];
			if (ch == '\r' || ch == '\n')
				return NULL;
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (c->i >= c->end)
					return NULL;
				ch = c->d[c->i++];
			}
			c->d[o++] = ch;	/* unescape in place */
		}
		v->len = (size_t)(c->d + o - v->s);
		return v;
	}
	if (ch == '{') {
		size_t n = 0;

		if ((v = val_new(c, MIGRATE_VAL_STRING)) == NULL)
			return NULL;
		c->i++;
		while (c->i < c->end && c->d[c->i] >= '0' &&
		    c->d[c->i] <= '9') {
			/* The scan bounded the size already. */
			n = n * 10 + (size_t)(c->d[c->i] - '0');
			c->i++;
		}
		if (c->i < c->end && c->d[c->i] == '+')
			c->i++;
		if (c->i < c->end && c->d[c->i] == '}')
			c->i++;
		else
			return NULL;
		if (c->i < c->end && c->d[c->i] == '\r')
			c->i++;
		if (c->i >= c->end || c->d[c->i] != '\n')
			return NULL;
		c->i++;
		if (n > c->end - c->i)
			return NULL;
		v->s = c->d + c->i;
		v->len = n;
		c->i += n;
		return v;
	}
	if (!is_atom_char(ch) || ch == ')')
		return NULL;
	if ((v = val_new(c, MIGRATE_VAL_ATOM)) == NULL)
		return NULL;
	v->s = c->d + c->i;
	/* An atom may hold a bracketed section with spaces and parentheses
	 * ("BODY[HEADER.FIELDS (DATE)]"): it runs to its "]". */
	while (c->i < c->end && is_atom_char(c->d[c->i])) {
		if (c->d[c->i] == '[') {
			while (c->i < c->end && c->d[c->i] != ']' &&
			    c->d[c->i] != '\r' && c->d[c->i] != '\n')
				c->i++;
			if (c->i >= c->end || c->d[c->i] != ']')
				return NULL;
		}
		c->i++;
	}
	v->len = (size_t)(c->d + c->i - v->s);
	if (v->len == 3 && strncasecmp(v->s, "NIL", 3) == 0)
		v->kind = MIGRATE_VAL_NIL;
	return v;
}

static const struct {
	const char *word;
	enum migrate_status status;
} statuses[] = {
	{ "OK", MIGRATE_STATUS_OK },
	{ "NO", MIGRATE_STATUS_NO },
	{ "BAD", MIGRATE_STATUS_BAD },
	{ "BYE", MIGRATE_STATUS_BYE },
	{ "PREAUTH", MIGRATE_STATUS_PREAUTH },
};

/* Copies n bytes into the work area as a NUL-terminated string, with
 * control characters made '?' (the text reaches logs and terminals). */
static const char *
work_put(char **w, const char *s, size_t n)
{
	char *out = *w;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
	*w += n + 1;
	return out;
}

/* resp-text (RFC 9051 §9): "[" code [SP args] "]" SP text, or text. */
static void
status_text(struct cursor *c, char **w, struct migrate_resp *r)
{
	size_t e = c->i;

	/* Only the first line: a status response has no literals. */
	while (e < c->end && c->d[e] != '\r' && c->d[e] != '\n')
		e++;
	while (c->i < e && c->d[c->i] == ' ')
		c->i++;
	r->code = r->code_args = "";
	if (c->i < e && c->d[c->i] == '[') {
		size_t s = ++c->i, a, close;
		char *code;

		close = s;
		while (close < e && c->d[close] != ']')
			close++;
		a = s;
		while (a < close && c->d[a] != ' ')
			a++;
		code = (char *)work_put(w, c->d + s, a - s);
		for (char *q = code; *q; q++)
			*q = (char)toupper((unsigned char)*q);
		r->code = code;
		if (a < close)
			a++;
		r->code_args = work_put(w, c->d + a, close - a);
		c->i = close < e ? close + 1 : e;
		while (c->i < e && c->d[c->i] == ' ')
			c->i++;
	}
	r->text = work_put(w, c->d + c->i, e - c->i);
}

static enum parse_rc
parse(struct migrate_parser *p, struct buf *in, struct migrate_resp *r)
{
	struct cursor c = { .p = p, .d = in->data, .i = 0, .end = p->end };
	size_t t;
	char *w;

	memset(r, 0, sizeof(*r));
	/* Values: at most one per text byte (each takes at least one). */
	if (p->text_bytes + 1 > p->vals_cap) {
		p->vals_cap = p->text_bytes + 1;
		p->vals = xrealloc(p->vals, p->vals_cap * sizeof(*p->vals));
	}
	p->nvals = 0;
	/* Tag, code and text are copies of text bytes, each NUL-ended. */
	free(p->work);
	p->work = w = xmalloc(p->text_bytes + 4);
	r->tag = r->code = r->code_args = r->text = "";

	t = 0;
	while (t < c.end && c.d[t] != ' ' && c.d[t] != '\r' && c.d[t] != '\n')
		t++;
	if (t == 0) {
		p->error = "a response without a tag";
		return PARSE_ERROR;
	}
	if (t == 1 && c.d[0] == '+') {
		r->kind = MIGRATE_RESP_CONTINUE;
		c.i = 1;
		status_text(&c, &w, r);
		return PARSE_DONE;
	}
	if (t == 1 && c.d[0] == '*') {
		r->kind = MIGRATE_RESP_UNTAGGED;
	} else {
		r->kind = MIGRATE_RESP_TAGGED;
		for (size_t i = 0; i < t; i++)
			if (!is_atom_char(c.d[i])) {
				p->error = "a tag with a character not allowed";
				return PARSE_ERROR;
			}
		r->tag = work_put(&w, c.d, t);
	}
	c.i = t;
	while (c.i < c.end && c.d[c.i] == ' ')
		c.i++;
	{
		size_t s = c.i, e = c.i;

		while (e < c.end && is_atom_char(c.d[e]))
			e++;
		for (size_t k = 0; k < ARRAY_LEN(statuses); k++)
			if (e - s == strlen(statuses[k].word) &&
			    strncasecmp(c.d + s, statuses[k].word, e - s) == 0)
				r->status = statuses[k].status;
		if (r->status != MIGRATE_STATUS_NONE) {
			c.i = e;
			status_text(&c, &w, r);
			return PARSE_DONE;
		}
	}
	if (r->kind == MIGRATE_RESP_TAGGED) {
		p->error = "a tagged response that is not OK, NO or BAD";
		return PARSE_ERROR;
	}
	{
		struct migrate_val top = { .kind = MIGRATE_VAL_LIST };

		if (items(&c, &top, 0) < 0 || top.n == 0) {
			p->error = "a response that does not parse";
			return PARSE_ERROR;
		}
		r->items = top.kid;
		r->n = top.n;
	}
	return PARSE_DONE;
}

enum parse_rc
migrate_parser_feed(struct migrate_parser *p, struct buf *in,
    struct migrate_resp *r_out)
{
	enum parse_rc rc;

	if (p->end != 0)
		panic("migrate_parser_feed before migrate_parser_consume");
	rc = scan(p, in);
	if (rc != PARSE_DONE)
		return rc;
	rc = parse(p, in, r_out);
	if (rc == PARSE_ERROR)
		p->end = 0;
	return rc;
}

void
migrate_parser_consume(struct migrate_parser *p, struct buf *in)
{
	buf_consume(in, p->end);
	p->off = p->line_start = p->end = 0;
	p->text_bytes = 0;
	p->literal_left = 0;
	p->is_quoted = p->is_escaped = false;
}
