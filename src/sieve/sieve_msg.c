/*
 * sieve_msg: what tests read of a message: its header fields (unfolded,
 * trimmed, RFC 2047 decoded), address lists (RFC 5322 §3.4: groups,
 * comments, quoted strings, routes), dates (RFC 5322 §3.3 for the date
 * test, RFC 5260 §4 date parts) and body parts (RFC 5173, decoded through
 * mime).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "mime/mime.h"
#include "sieve/sieve_int.h"

/* Fields of one header that are looked at. */
#define SV_MAX_FIELDS 10000

void
sv_msg_init(struct sv_msg *m, const char *data, size_t len)
{
	size_t i = 0, cap = 0;

	memset(m, 0, sizeof(*m));
	m->data = data;
	m->len = len;
	while (i < len) {
		size_t eol = i, name_end, vstart;

		/* the blank line ends the header */
		if (data[i] == '\n') {
			i++;
			break;
		}
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') {
			i += 2;
			break;
		}
		/* one field: the line and its continuation lines */
		for (;;) {
			while (eol < len && data[eol] != '\n')
				eol++;
			if (eol + 1 < len && (data[eol + 1] == ' ' ||
			    data[eol + 1] == '\t')) {
				eol++;
				continue;
			}
			break;
		}
		for (name_end = i; name_end < eol && data[name_end] != ':';
		    name_end++)
			;
		if (name_end < eol && name_end > i && m->nf < SV_MAX_FIELDS) {
			size_t vend = eol;
			size_t nend = name_end;

			while (nend > i && (data[nend - 1] == ' ' ||
			    data[nend - 1] == '\t'))
				nend--;
			vstart = name_end + 1;
			if (vend > vstart && data[vend - 1] == '\r')
				vend--;
			if (m->nf == cap) {
				cap = cap ? cap * 2 : 16;
				m->f = xrealloc(m->f, cap * sizeof(*m->f));
			}
			m->f[m->nf].name = xstrndup(data + i, nend - i);
			m->f[m->nf].raw = xstrndup(data + vstart,
			    vend - vstart);
			m->nf++;
		}
		i = eol < len ? eol + 1 : eol;
	}
	m->body_off = i;
}

void
sv_msg_deinit(struct sv_msg *m)
{
	for (size_t i = 0; i < m->nf; i++) {
		free(m->f[i].name);
		free(m->f[i].raw);
	}
	free(m->f);
	memset(m, 0, sizeof(*m));
}

char *
sv_field_value(const struct sv_field *f, bool decode)
{
	size_t n = strlen(f->raw), o = 0, a, b;
	char *v = xmalloc(n + 1), *d;

	for (size_t i = 0; i < n; i++) {
		if (f->raw[i] == '\r' || f->raw[i] == '\n')
			continue;
		/* unfolding (RFC 5322 §2.2.3): the tab starting a
		 * continuation line reads as a space, as in Pigeonhole */
		if (f->raw[i] == '\t' && i > 0 && f->raw[i - 1] == '\n')
			v[o++] = ' ';
		else
			v[o++] = f->raw[i];
	}
	v[o] = '\0';
	for (a = 0; a < o && (v[a] == ' ' || v[a] == '\t'); a++)
		;
	for (b = o; b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'); b--)
		;
	memmove(v, v + a, b - a);
	v[b - a] = '\0';
	if (!decode || strstr(v, "=?") == NULL)
		return v;
	d = mime_header_decode(v);
	free(v);
	return d;
}

/* ---- Addresses --------------------------------------------------------- */

static char *
trim_dup(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* Removes comments and folding white space outside quotes. */
static char *
strip_comments(const char *s, size_t n)
{
	char *o = xmalloc(n + 1);
	size_t k = 0;
	int depth = 0;
	bool q = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (q) {
			o[k++] = c;
			if (c == '\\' && i + 1 < n)
				o[k++] = s[++i];
			else if (c == '"')
				q = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (c == '"')
			q = true;
		o[k++] = c;
	}
	o[k] = '\0';
	return o;
}

static void
add_addr(const char *spec, struct sv_addr **out, size_t *n, size_t *cap)
{
	char *s = trim_dup(spec, strlen(spec)), *at = NULL;
	struct sv_addr *a;
	bool q = false;
	size_t k = 0;

	/* drop white space outside quotes ("a . b @ c" is "a.b@c") */
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '"')
			q = !q;
		if (!q && isspace((unsigned char)s[i]))
			continue;
		s[k++] = s[i];
	}
	s[k] = '\0';
	if (*s == '\0') {
		free(s);
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*out = xrealloc(*out, *cap * sizeof(**out));
	}
	a = &(*out)[(*n)++];
	q = false;
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '"')
			q = !q;
		else if (*p == '@' && !q)
			at = p;
	}
	a->all = s;
	if (at != NULL) {
		a->local = xstrndup(s, (size_t)(at - s));
		a->domain = xstrdup(at + 1);
	} else {
		a->local = xstrdup(s);
		a->domain = NULL;
	}
}

size_t
sv_addrs_parse(const char *v, struct sv_addr **out)
{
	char *s = strip_comments(v, strlen(v));
	size_t n = 0, cap = 0, start = 0, len = strlen(s);
	bool q = false, in_angle = false;

	*out = NULL;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : ',';

		if (q) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				q = false;
			continue;
		}
		if (c == '"') {
			q = true;
			continue;
		}
		if (c == '<')
			in_angle = true;
		else if (c == '>')
			in_angle = false;
		if (in_angle)
			continue;
		if (c == ':') {
			/* a group's name */
			start = i + 1;
			continue;
		}
		if (c != ',' && c != ';')
			continue;
		if (n >= 1000)
			break;
		{
			char *e = s + start, *lt = NULL, *gt;
			size_t elen = i - start;
			bool eq = false;

			for (size_t k = 0; k < elen; k++) {
				if (e[k] == '"')
					eq = !eq;
				else if (e[k] == '<' && !eq) {
					lt = e + k;
					break;
				}
			}
			if (lt != NULL) {
				char *spec;

				gt = memchr(lt, '>', (size_t)(e + elen - lt));
				if (gt == NULL)
					gt = e + elen;
				spec = xstrndup(lt + 1, (size_t)(gt - lt - 1));
				/* an obsolete route "@a,@b:" before it */
				{
					char *colon = spec[0] == '@' ?
					    strchr(spec, ':') : NULL;

					add_addr(colon != NULL ? colon + 1 :
					    spec, out, &n, &cap);
				}
				free(spec);
			} else {
				char *spec = xstrndup(e, elen);

				add_addr(spec, out, &n, &cap);
				free(spec);
			}
		}
		start = i + 1;
	}
	free(s);
	return n;
}

void
sv_addrs_free(struct sv_addr *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].all);
		free(a[i].local);
		free(a[i].domain);
	}
	free(a);
}

/* ---- Dates ------------------------------------------------------------- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static const char *const months[] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const mon_names[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const day_names[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };

bool
sv_zone_parse(const char *s, int *zone_out)
{
	int h, m;

	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 5)
		return false;
	for (int i = 1; i < 5; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
	}
	h = (s[1] - '0') * 10 + (s[2] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return false;
	*zone_out = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
	return true;
}

static const char *
skip_cfws(const char *s)
{
	int depth = 0;

	for (;; s++) {
		if (*s == '(')
			depth++;
		else if (*s == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !isspace((unsigned char)*s))
			return s;
		if (*s == '\0')
			return s;
	}
}

static bool
read_num(const char **s, int min_digits, int max_digits, int *out)
{
	int v = 0, k = 0;

	*s = skip_cfws(*s);
	while (isdigit((unsigned char)**s) && k < max_digits) {
		v = v * 10 + (**s - '0');
		(*s)++;
		k++;
	}
	if (k < min_digits)
		return false;
	*out = v;
	return true;
}

bool
sv_date_parse(const char *s, struct sv_date *out)
{
	int day, mon = -1, year, hh, mm, ss = 0, zone = 0;
	char word[16];
	size_t k;

	s = skip_cfws(s);
	if (isalpha((unsigned char)*s)) {
		/* day of week */
		while (isalpha((unsigned char)*s))
			s++;
		s = skip_cfws(s);
		if (*s != ',')
			return false;
		s++;
	}
	if (!read_num(&s, 1, 2, &day))
		return false;
	s = skip_cfws(s);
	for (k = 0; k < sizeof(word) - 1 && isalpha((unsigned char)*s); k++)
		word[k] = (char)tolower((unsigned char)*s++);
	word[k] = '\0';
	for (int i = 0; i < 12; i++) {
		if (strcmp(word, months[i]) == 0)
			mon = i + 1;
	}
	if (mon < 0 || !read_num(&s, 2, 4, &year))
		return false;
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	if (!read_num(&s, 1, 2, &hh))
		return false;
	s = skip_cfws(s);
	if (*s++ != ':' || !read_num(&s, 2, 2, &mm))
		return false;
	s = skip_cfws(s);
	if (*s == ':') {
		s++;
		if (!read_num(&s, 2, 2, &ss))
			return false;
	}
	s = skip_cfws(s);
	if (*s == '+' || *s == '-') {
		char z[6];

		if (strnlen(s, 5) < 5)
			return false;
		memcpy(z, s, 5);
		z[5] = '\0';
		if (!sv_zone_parse(z, &zone))
			return false;
	} else {
		static const struct { const char *n; int z; } names[] = {
			{ "ut", 0 }, { "gmt", 0 }, { "z", 0 },
			{ "est", -300 }, { "edt", -240 }, { "cst", -360 },
			{ "cdt", -300 }, { "mst", -420 }, { "mdt", -360 },
			{ "pst", -480 }, { "pdt", -420 },
		};
		for (k = 0; k < sizeof(word) - 1 && isalpha((unsigned char)*s);
		    k++)
			word[k] = (char)tolower((unsigned char)*s++);
		word[k] = '\0';
		for (size_t i = 0; i < ARRAY_LEN(names); i++) {
			if (strcmp(word, names[i].n) == 0)
				zone = names[i].z;
		}
	}
	if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return false;
	out->t = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
	    hh * 3600 + mm * 60 + ss - (int64_t)zone * 60;
	out->zone = zone;
	return true;
}

static const char *const date_parts[] = { "year", "month", "day", "date",
	"julian", "hour", "minute", "second", "time", "iso8601", "std11",
	"zone", "weekday" };

bool
sv_is_date_part(const char *part)
{
	for (size_t i = 0; i < ARRAY_LEN(date_parts); i++) {
		if (strcasecmp(part, date_parts[i]) == 0)
			return true;
	}
	return false;
}

bool
sv_date_part(int64_t t, int zone, const char *part, char *out, size_t size)
{
	int64_t local = t + (int64_t)zone * 60, days = local / 86400;
	int64_t secs = local % 86400;
	time_t tt;
	struct tm tm;
	int az = zone < 0 ? -zone : zone;
	char zs = zone < 0 ? '-' : '+';

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	tt = (time_t)(days * 86400 + secs);
	gmtime_r(&tt, &tm);
	if (strcasecmp(part, "year") == 0)
		snprintf(out, size, "%04d", tm.tm_year + 1900);
	else if (strcasecmp(part, "month") == 0)
		snprintf(out, size, "%02d", tm.tm_mon + 1);
	else if (strcasecmp(part, "day") == 0)
		snprintf(out, size, "%02d", tm.tm_mday);
	else if (strcasecmp(part, "date") == 0)
		snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
	else if (strcasecmp(part, "julian") == 0)
		snprintf(out, size, "%lld", (long long)(days + 40587));
	else if (strcasecmp(part, "hour") == 0)
		snprintf(out, size, "%02d", tm.tm_hour);
	else if (strcasecmp(part, "minute") == 0)
		snprintf(out, size, "%02d", tm.tm_min);
	else if (strcasecmp(part, "second") == 0)
		snprintf(out, size, "%02d", tm.tm_sec);
	else if (strcasecmp(part, "time") == 0)
		snprintf(out, size, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
	else if (strcasecmp(part, "iso8601") == 0 && zone == 0)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	else if (strcasecmp(part, "iso8601") == 0)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, zs, az / 60, az % 60);
	else if (strcasecmp(part, "std11") == 0)
		snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d",
		    day_names[tm.tm_wday], tm.tm_mday, mon_names[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zs,
		    az / 60, az % 60);
	else if (strcasecmp(part, "zone") == 0)
		snprintf(out, size, "%c%02d%02d", zs, az / 60, az % 60);
	else if (strcasecmp(part, "weekday") == 0)
		snprintf(out, size, "%d", tm.tm_wday);
	else
		return false;
	return true;
}

/* ---- Body -------------------------------------------------------------- */

/* Bytes of decoded text one body part gives the body test. */
#define SV_MAX_BODY_PART (1u << 20)

static void
body_add(struct sv_body *b, char *s)
{
	b->parts = xrealloc(b->parts, (b->n + 1) * sizeof(*b->parts));
	b->parts[b->n++] = s;
}

/* RFC 5173 §5.2: "" every type, "text" its subtypes, "text/plain" one. */
static bool
is_type_wanted(const char *ctype, const struct sv_list *types)
{
	const char *slash = strchr(ctype, '/');
	size_t major = slash != NULL ? (size_t)(slash - ctype) : strlen(ctype);

	for (size_t i = 0; i < types->n; i++) {
		const char *t = types->v[i].s;

		if (*t == '\0')
			return true;
		if (strchr(t, '/') != NULL) {
			if (strcasecmp(t, ctype) == 0)
				return true;
		} else if (strlen(t) == major &&
		    strncasecmp(t, ctype, major) == 0) {
			return true;
		}
	}
	return false;
}

/* The text of an HTML part, as RFC 5173 §5.3 asks for :text: tags,
 * comments, style sheets and scripts dropped, the common entities
 * decoded, white space runs collapsed to one space. Takes html. */
static char *
html_text(char *html)
{
	static const struct { const char *name; const char *text; } ents[] = {
		{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
		{ "apos", "'" }, { "nbsp", " " },
	};
	size_t n = strlen(html), o = 0;
	char *out = xmalloc(n + 1);
	bool space = true;

	for (size_t i = 0; i < n;) {
		char c = html[i];
		const char *skip_to = NULL;

		if (c == '<') {
			if (strncmp(html + i, "<!--", 4) == 0)
				skip_to = "-->";
			else if (strncasecmp(html + i, "<style", 6) == 0)
				skip_to = "</style>";
			else if (strncasecmp(html + i, "<script", 7) == 0)
				skip_to = "</script>";
			else
				skip_to = ">";
			{
				const char *e = strcasestr(html + i + 1,
				    skip_to);

				i = e != NULL ? (size_t)(e - html) +
				    strlen(skip_to) : n;
			}
			if (!space) {
				out[o++] = ' ';
				space = true;
			}
			continue;
		}
		if (c == '&') {
			size_t k;
			bool done = false;

			for (k = 0; k < ARRAY_LEN(ents) && !done; k++) {
				size_t l = strlen(ents[k].name);

				if (strncasecmp(html + i + 1, ents[k].name, l)
				    == 0 && html[i + 1 + l] == ';') {
					out[o++] = ents[k].text[0];
					i += l + 2;
					done = true;
				}
			}
			if (done) {
				space = out[o - 1] == ' ';
				continue;
			}
		}
		if (isspace((unsigned char)c)) {
			if (!space)
				out[o++] = ' ';
			space = true;
			i++;
			continue;
		}
		out[o++] = c;
		space = false;
		i++;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	free(html);
	return out;
}

void
sv_body_extract(const char *data, size_t len, bool is_raw,
    const struct sv_list *types, struct sv_body *out)
{
	struct mime_info info;

	memset(out, 0, sizeof(*out));
	if (is_raw) {
		struct sv_msg m;

		sv_msg_init(&m, data, len);
		body_add(out, xstrndup(data + m.body_off, len - m.body_off));
		sv_msg_deinit(&m);
		return;
	}
	mime_init();
	if (mime_parse(data, len, &info) != 0)
		return;
	for (size_t i = 0; i < info.nparts; i++) {
		const struct mime_part *p = &info.parts[i];
		const char *ct = p->content_type != NULL ? p->content_type :
		    "text/plain";
		bool want;

		if (p->section[0] == '\0' || p->is_multipart || p->is_message)
			continue;
		if (types == NULL)
			want = strncasecmp(ct, "text/", 5) == 0;
		else
			want = is_type_wanted(ct, types);
		if (!want || p->body_off > p->end_off || p->end_off > len)
			continue;
		{
			char *text = mime_body_decode(data + p->body_off,
			    p->end_off - p->body_off, p->transfer_encoding,
			    p->charset, SV_MAX_BODY_PART);

			if (types == NULL &&
			    strcasecmp(ct, "text/html") == 0)
				text = html_text(text);
			body_add(out, text);
		}
	}
	mime_info_deinit(&info);
}

void
sv_body_free(struct sv_body *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->parts[i]);
	free(b->parts);
	memset(b, 0, sizeof(*b));
}
