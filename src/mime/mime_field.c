#include "mime/mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* The longest RFC 2231 section number we read (RFC 2231 §3); "name*12345"
 * is kept as a plain parameter. */
#define SECTION_DIGITS 4

static const struct {
	const char *name;
	enum mime_field field;
} field_names[] = {
	{ "Content-Type", MIME_FIELD_CONTENT_TYPE },
	{ "Content-Transfer-Encoding", MIME_FIELD_CONTENT_TRANSFER_ENCODING },
	{ "Content-ID", MIME_FIELD_CONTENT_ID },
	{ "Content-Description", MIME_FIELD_CONTENT_DESCRIPTION },
	{ "Content-MD5", MIME_FIELD_CONTENT_MD5 },
	{ "Content-Disposition", MIME_FIELD_CONTENT_DISPOSITION },
	{ "Content-Language", MIME_FIELD_CONTENT_LANGUAGE },
	{ "Content-Location", MIME_FIELD_CONTENT_LOCATION },
	{ "Date", MIME_FIELD_DATE },
	{ "Subject", MIME_FIELD_SUBJECT },
	{ "From", MIME_FIELD_FROM },
	{ "Sender", MIME_FIELD_SENDER },
	{ "Reply-To", MIME_FIELD_REPLY_TO },
	{ "To", MIME_FIELD_TO },
	{ "Cc", MIME_FIELD_CC },
	{ "Bcc", MIME_FIELD_BCC },
	{ "In-Reply-To", MIME_FIELD_IN_REPLY_TO },
	{ "Message-ID", MIME_FIELD_MESSAGE_ID },
	{ "References", MIME_FIELD_REFERENCES },
};

enum mime_field
mime_field_lookup(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(field_names); i++) {
		if (strlen(field_names[i].name) == len &&
		    strncasecmp(field_names[i].name, name, len) == 0)
			return field_names[i].field;
	}
	return MIME_FIELD_OTHER;
}

char *
mime_field_unfold(const struct mime_span *sp)
{
	struct mime_str b;
	size_t i, start, end;
	char *s;

	if (sp->p == NULL)
		return NULL;
	mime_str_init(&b);
	/* RFC 5322 §2.2.3: unfolding removes the CRLF before each
	 * continuation line. NUL is no character a client could show; it
	 * becomes U+FFFD. */
	for (i = 0; i < sp->len; i++) {
		char c = sp->p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '\0')
			mime_str_add(&b, "\xef\xbf\xbd", 3);
		else
			mime_str_addc(&b, c);
	}
	s = mime_str_take(&b);
	for (start = 0; s[start] == ' ' || s[start] == '\t'; start++)
		;
	end = strlen(s);
	while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	memmove(s, s + start, end - start);
	s[end - start] = '\0';
	return s;
}

/* A reader over one unfolded value. */
struct lex {
	const unsigned char *p;
	const unsigned char *end;
};

static void
lex_init(struct lex *lx, const char *v)
{
	lx->p = (const unsigned char *)v;
	lx->end = lx->p + strlen(v);
}

static bool
is_at(const struct lex *lx, char c)
{
	return lx->p < lx->end && *lx->p == (unsigned char)c;
}

/* Skips white space and comments (RFC 5322 §3.2.2 CFWS). Comments nest
 * and may hold quoted pairs; an unclosed one runs to the end. */
static void
lex_skip_cfws(struct lex *lx)
{
	while (lx->p < lx->end) {
		unsigned char c = *lx->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->p++;
			continue;
		}
		if (c != '(')
			return;
		size_t level = 0;

		while (lx->p < lx->end) {
			c = *lx->p++;
			if (c == '\\') {
				if (lx->p < lx->end)
					lx->p++;
			} else if (c == '(') {
				level++;
			} else if (c == ')' && --level == 0) {
				break;
			}
		}
	}
}

/* RFC 2045 §5.1 token characters; 8-bit bytes are let through, as
 * real-world mail has them. */
static bool
is_token_char(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Reads a token; returns it as a new string, or NULL when there is none. */
static char *
lex_token(struct lex *lx)
{
	const unsigned char *start = lx->p;

	while (lx->p < lx->end && is_token_char(*lx->p))
		lx->p++;
	if (lx->p == start)
		return NULL;
	return xstrndup((const char *)start, (size_t)(lx->p - start));
}

/* Reads a quoted string at the opening quote into a new string, quoted
 * pairs resolved. An unclosed one runs to the end. */
static char *
lex_quoted(struct lex *lx)
{
	struct mime_str b;

	mime_str_init(&b);
	lx->p++;
	while (lx->p < lx->end) {
		unsigned char c = *lx->p++;

		if (c == '"')
			break;
		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		mime_str_addc(&b, (char)c);
	}
	return mime_str_take(&b);
}

static void
lex_skip_past(struct lex *lx, char c)
{
	while (lx->p < lx->end && *lx->p != (unsigned char)c)
		lx->p++;
}

/* One parameter as written, before RFC 2231 merging. */
struct raw_param {
	char *name;
	char *value;
	char *base;	/* name before its '*', for RFC 2231 sections */
	unsigned idx;
	size_t pos;	/* order of appearance */
	bool is_section;
	bool is_extended;
};

/* Splits "name*3*" into its base "name", section 3 and the extended flag
 * (RFC 2231 §3 and §4). Leaves p a plain parameter otherwise. */
static void
param_split_section(struct raw_param *p)
{
	const char *star = strchr(p->name, '*');
	const char *s;
	unsigned idx = 0, digits = 0;
	bool is_extended;

	if (star == NULL || star == p->name)
		return;
	/* "name*" alone is section 0, extended; otherwise digits and an
	 * optional '*' must end the name. */
	s = star + 1;
	if (*s == '\0') {
		is_extended = true;
	} else {
		while (*s >= '0' && *s <= '9') {
			if (++digits > SECTION_DIGITS)
				return;
			idx = idx * 10 + (unsigned)(*s - '0');
			s++;
		}
		is_extended = *s == '*';
		if (is_extended)
			s++;
		if (digits == 0 || *s != '\0')
			return;
	}
	p->is_section = true;
	p->is_extended = is_extended;
	p->idx = idx;
	p->base = xstrndup(p->name, (size_t)(star - p->name));
}

static int
param_cmp(const void *a, const void *b)
{
	const struct raw_param *x = *(const struct raw_param *const *)a;
	const struct raw_param *y = *(const struct raw_param *const *)b;
	int c = strcasecmp(x->base, y->base);

	if (c != 0)
		return c;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void
params_push(struct mime_params *params, char *name, char *value)
{
	params->v = xrealloc(params->v, (params->n + 1) * sizeof(*params->v));
	params->v[params->n].name = name;
	params->v[params->n].value = value;
	params->n++;
}

/* Adds the sections of one parameter, sorted, as one parameter when they
 * are numbered 0, 1, 2 ... without a gap, and one by one otherwise. When
 * any section is extended the result is "name*" with an RFC 2231 value:
 * plain sections get their '%' escaped and a leading "''" if the first one
 * is plain. This is what Dovecot sends, so clients decode it. */
static void
params_merge_group(struct raw_param **g, size_t n, struct mime_params *params)
{
	bool is_complete = true, has_extended = false;
	struct mime_str b;
	size_t i;

	for (i = 0; i < n; i++) {
		if (g[i]->idx != i)
			is_complete = false;
		if (g[i]->is_extended)
			has_extended = true;
	}
	if (!is_complete) {
		for (i = 0; i < n; i++) {
			params_push(params, xasprintf(g[i]->is_extended ?
			    "%s*%u*" : "%s*%u", g[i]->base, g[i]->idx),
			    xstrdup(g[i]->value));
		}
		return;
	}
	mime_str_init(&b);
	if (has_extended && !g[0]->is_extended)
		mime_str_adds(&b, "''");
	for (i = 0; i < n; i++) {
		const char *v = g[i]->value;

		if (!has_extended || g[i]->is_extended) {
			mime_str_adds(&b, v);
			continue;
		}
		for (; *v != '\0'; v++) {
			if (*v == '%')
				mime_str_adds(&b, "%25");
			else
				mime_str_addc(&b, *v);
		}
	}
	params_push(params, has_extended ? xasprintf("%s*", g[0]->base) :
	    xstrdup(g[0]->base), mime_str_take(&b));
}

/* Turns the parameters as written into what BODYSTRUCTURE shows: plain
 * ones in their order, then the RFC 2231 ones merged, by name. */
static void
params_finish(struct raw_param *raw, size_t n, struct mime_params *params_out)
{
	struct raw_param **sec;
	size_t i, nsec = 0;

	params_out->v = NULL;
	params_out->n = 0;
	sec = xcalloc(n, sizeof(*sec));
	for (i = 0; i < n; i++) {
		param_split_section(&raw[i]);
		if (raw[i].is_section)
			sec[nsec++] = &raw[i];
		else
			params_push(params_out, xstrdup(raw[i].name),
			    xstrdup(raw[i].value));
	}
	qsort(sec, nsec, sizeof(*sec), param_cmp);
	for (i = 0; i < nsec;) {
		size_t j = i + 1;

		while (j < nsec && strcasecmp(sec[i]->base, sec[j]->base) == 0)
			j++;
		params_merge_group(sec + i, j - i, params_out);
		i = j;
	}
	free(sec);
	for (i = 0; i < n; i++) {
		free(raw[i].name);
		free(raw[i].value);
		free(raw[i].base);
	}
}

/* Reads *(";" attribute "=" value) (RFC 2045 §5.1). A broken parameter is
 * skipped up to the next ';'; one of the form name==?utf-8?...?= (a common
 * mistake) keeps its value. At most MIME_MAX_PARAMS are kept. */
static void
lex_params(struct lex *lx, struct mime_params *params_out)
{
	struct raw_param raw[MIME_MAX_PARAMS];
	size_t n = 0;

	while (lx->p < lx->end) {
		char *name, *value;

		if (!is_at(lx, ';')) {
			lex_skip_past(lx, ';');
			continue;
		}
		lx->p++;
		lex_skip_cfws(lx);
		name = lex_token(lx);
		if (name == NULL)
			continue;
		lex_skip_cfws(lx);
		if (!is_at(lx, '=')) {
			free(name);
			continue;
		}
		lx->p++;
		lex_skip_cfws(lx);
		if (is_at(lx, '"')) {
			value = lex_quoted(lx);
		} else if (is_at(lx, '=')) {
			const unsigned char *start = lx->p;

			while (lx->p < lx->end && *lx->p != ';' &&
			    *lx->p != ' ' && *lx->p != '\t')
				lx->p++;
			value = xstrndup((const char *)start,
			    (size_t)(lx->p - start));
		} else {
			value = lex_token(lx);
			if (value == NULL)
				value = xstrdup("");
		}
		lex_skip_cfws(lx);
		if (n == MIME_MAX_PARAMS) {
			free(name);
			free(value);
			continue;
		}
		memset(&raw[n], 0, sizeof(raw[n]));
		raw[n].name = name;
		raw[n].value = value;
		raw[n].pos = n;
		n++;
	}
	params_finish(raw, n, params_out);
}

bool
mime_field_parse_ctype(const char *v, struct mime_ctype *ct_out)
{
	struct lex lx;
	char *type, *subtype;

	memset(ct_out, 0, sizeof(*ct_out));
	lex_init(&lx, v);
	lex_skip_cfws(&lx);
	type = lex_token(&lx);
	if (type == NULL)
		return false;
	lex_skip_cfws(&lx);
	if (!is_at(&lx, '/')) {
		free(type);
		return false;
	}
	lx.p++;
	lex_skip_cfws(&lx);
	subtype = lex_token(&lx);
	if (subtype == NULL) {
		free(type);
		return false;
	}
	lex_skip_cfws(&lx);
	ct_out->type = type;
	ct_out->subtype = subtype;
	lex_params(&lx, &ct_out->params);
	return true;
}

char *
mime_field_parse_disposition(const char *v, struct mime_params *params_out)
{
	struct lex lx;
	char *type;

	params_out->v = NULL;
	params_out->n = 0;
	lex_init(&lx, v);
	lex_skip_cfws(&lx);
	type = lex_token(&lx);
	if (type == NULL)
		return NULL;
	lex_skip_cfws(&lx);
	lex_params(&lx, params_out);
	return type;
}

/* RFC 5322 atext, plus 8-bit bytes. */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

void
mime_field_parse_language(const char *v, struct mime_list *langs_out)
{
	struct lex lx;

	/* RFC 3282 §2: Content-Language = 1#Language-tag. */
	langs_out->v = NULL;
	langs_out->n = 0;
	lex_init(&lx, v);
	lex_skip_cfws(&lx);
	while (lx.p < lx.end && langs_out->n < MIME_MAX_PARAMS) {
		const unsigned char *start = lx.p;

		while (lx.p < lx.end && is_atext(*lx.p))
			lx.p++;
		if (lx.p == start)
			break;
		langs_out->v = xrealloc(langs_out->v,
		    (langs_out->n + 1) * sizeof(*langs_out->v));
		langs_out->v[langs_out->n++] = xstrndup((const char *)start,
		    (size_t)(lx.p - start));
		lex_skip_cfws(&lx);
		if (!is_at(&lx, ','))
			break;
		lx.p++;
		lex_skip_cfws(&lx);
	}
}

char *
mime_field_parse_cte(const char *v)
{
	struct lex lx;
	char *token;

	lex_init(&lx, v);
	lex_skip_cfws(&lx);
	token = lex_token(&lx);
	if (token == NULL)
		return NULL;
	lex_skip_cfws(&lx);
	if (lx.p != lx.end) {
		free(token);
		return NULL;
	}
	return token;
}

const char *
mime_field_param(const struct mime_params *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (strcasecmp(p->v[i].name, name) == 0)
			return p->v[i].value;
	}
	return NULL;
}

void
mime_field_params_deinit(struct mime_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

void
mime_field_list_deinit(struct mime_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
mime_field_ctype_deinit(struct mime_ctype *ct)
{
	free(ct->type);
	free(ct->subtype);
	mime_field_params_deinit(&ct->params);
	ct->type = ct->subtype = NULL;
}
