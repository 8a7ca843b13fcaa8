/*
 * migrate_values: readers of the values a parsed response holds (FETCH
 * attributes, LIST, VANISHED sets, dates). Every number is checked for
 * overflow, nothing is allocated from one, and a value of the wrong kind
 * is an error rather than a guess. Folder names are decoded by
 * lib/mutf7.h, once the caller has refused a name holding a NUL.
 */
#include "migrate/migrate_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"
#include "store/store.h"

bool
is_migrate_val_atom(const struct migrate_val *v, const char *word)
{
	return v != NULL && v->kind == MIGRATE_VAL_ATOM &&
	    v->len == strlen(word) && strncasecmp(v->s, word, v->len) == 0;
}

bool
migrate_text_u64(const char *s, size_t len, uint64_t *n_out)
{
	uint64_t n = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*n_out = n;
	return true;
}

bool
migrate_val_u64(const struct migrate_val *v, uint64_t *n_out)
{
	return v != NULL && v->kind == MIGRATE_VAL_ATOM &&
	    migrate_text_u64(v->s, v->len, n_out);
}

bool
migrate_val_u32(const struct migrate_val *v, uint32_t *n_out)
{
	uint64_t n;

	if (!migrate_val_u64(v, &n) || n > UINT32_MAX)
		return false;
	*n_out = (uint32_t)n;
	return true;
}

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

/* A keyword is an atom without "\" (RFC 9051 flag-keyword); \Recent and
 * other system or extension flags of the source are not ours to copy. */
static bool
is_keyword(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' ||
		    c == '{' || c == '%' || c == '*' || c == '"' ||
		    c == '\\' || c == ']')
			return false;
	}
	return true;
}

static int
flags_read(const struct migrate_val *list, struct migrate_fetch *f,
    bool *is_truncated)
{
	size_t used = 0;

	if (list->kind != MIGRATE_VAL_LIST)
		return -1;
	f->has_flags = true;
	f->flags = 0;
	f->keywords[0] = '\0';
	for (const struct migrate_val *v = list->kid; v; v = v->next) {
		bool is_system = false;

		if (v->kind != MIGRATE_VAL_ATOM)
			return -1;
		for (size_t k = 0; k < ARRAY_LEN(system_flags); k++)
			if (is_migrate_val_atom(v, system_flags[k].name)) {
				f->flags |= system_flags[k].bit;
				is_system = true;
			}
		if (is_system || !is_keyword(v->s, v->len))
			continue;
		if (used + v->len + 2 > sizeof(f->keywords)) {
			*is_truncated = true;
			continue;
		}
		if (used > 0)
			f->keywords[used++] = ' ';
		memcpy(f->keywords + used, v->s, v->len);
		used += v->len;
		f->keywords[used] = '\0';
	}
	return 0;
}

int
migrate_fetch_read(const struct migrate_resp *r, struct migrate_fetch *f_out,
    bool *is_truncated_out)
{
	const struct migrate_val *v;

	memset(f_out, 0, sizeof(*f_out));
	*is_truncated_out = false;
	if (r->kind != MIGRATE_RESP_UNTAGGED || r->n != 3 ||
	    !migrate_val_u32(r->items, &f_out->seq) ||
	    !is_migrate_val_atom(r->items->next, "FETCH") ||
	    r->items->next->next->kind != MIGRATE_VAL_LIST)
		return -1;
	v = r->items->next->next->kid;
	while (v != NULL) {
		const struct migrate_val *a = v->next;

		if (v->kind != MIGRATE_VAL_ATOM || a == NULL)
			return -1;
		if (is_migrate_val_atom(v, "UID")) {
			if (!migrate_val_u32(a, &f_out->uid) || f_out->uid == 0)
				return -1;
		} else if (is_migrate_val_atom(v, "FLAGS")) {
			if (flags_read(a, f_out, is_truncated_out) < 0)
				return -1;
		} else if (is_migrate_val_atom(v, "INTERNALDATE")) {
			if (a->kind != MIGRATE_VAL_STRING ||
			    !migrate_date_time_parse(a->s, a->len,
			    &f_out->internal_date))
				return -1;
			f_out->has_date = true;
		} else if (is_migrate_val_atom(v, "RFC822.SIZE")) {
			if (!migrate_val_u64(a, &f_out->size))
				return -1;
			f_out->has_size = true;
		} else if (is_migrate_val_atom(v, "MODSEQ")) {
			if (a->kind != MIGRATE_VAL_LIST || a->n != 1 ||
			    !migrate_val_u64(a->kid, &f_out->modseq))
				return -1;
		} else if (is_migrate_val_atom(v, "BODY[]") ||
		    is_migrate_val_atom(v, "RFC822") ||
		    is_migrate_val_atom(v, "BINARY[]")) {
			if (a->kind == MIGRATE_VAL_NIL) {
				f_out->body = "";
				f_out->body_len = 0;
			} else if (a->kind == MIGRATE_VAL_STRING) {
				f_out->body = a->s;
				f_out->body_len = a->len;
			} else {
				return -1;
			}
		}
		/* Other attributes (BODY[HEADER.FIELDS ...], ENVELOPE, ...)
		 * are skipped: every value, nested lists included, is one
		 * item. */
		v = a->next;
	}
	return 0;
}

int
migrate_list_read(const struct migrate_resp *r, struct migrate_list *l_out)
{
	const struct migrate_val *attrs, *delim, *name;
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{ "\\Noselect", MIGRATE_LIST_NOSELECT },
		{ "\\NonExistent", MIGRATE_LIST_NOSELECT },
		{ "\\Sent", MIGRATE_LIST_SENT },
		{ "\\Drafts", MIGRATE_LIST_DRAFTS },
		{ "\\Trash", MIGRATE_LIST_TRASH },
		{ "\\Junk", MIGRATE_LIST_JUNK },
		{ "\\Archive", MIGRATE_LIST_ARCHIVE },
	};

	memset(l_out, 0, sizeof(*l_out));
	if (r->kind != MIGRATE_RESP_UNTAGGED || r->n < 4 ||
	    !(is_migrate_val_atom(r->items, "LIST") ||
	    is_migrate_val_atom(r->items, "LSUB")))
		return -1;
	attrs = r->items->next;
	delim = attrs->next;
	name = delim->next;
	if (attrs->kind != MIGRATE_VAL_LIST)
		return -1;
	for (const struct migrate_val *v = attrs->kid; v; v = v->next) {
		if (v->kind != MIGRATE_VAL_ATOM)
			return -1;
		for (size_t k = 0; k < ARRAY_LEN(names); k++)
			if (is_migrate_val_atom(v, names[k].name))
				l_out->attrs |= names[k].bit;
	}
	if (delim->kind == MIGRATE_VAL_STRING && delim->len == 1)
		l_out->delim = delim->s[0];
	else if (delim->kind != MIGRATE_VAL_NIL)
		return -1;
	if (name->kind != MIGRATE_VAL_STRING && name->kind != MIGRATE_VAL_ATOM)
		return -1;
	l_out->name = name->s;
	l_out->name_len = name->len;
	return 0;
}

int
migrate_uidset_read(const char *s, size_t len,
    void (*cb)(void *arg, uint32_t lo, uint32_t hi), void *arg)
{
	size_t i = 0;

	if (len == 0)
		return -1;
	while (i < len) {
		size_t e = i;
		uint64_t a, b;
		size_t colon;

		while (e < len && s[e] != ',')
			e++;
		colon = i;
		while (colon < e && s[colon] != ':')
			colon++;
		if (!migrate_text_u64(s + i, colon - i, &a) || a == 0 ||
		    a > UINT32_MAX)
			return -1;
		b = a;
		if (colon < e && (!migrate_text_u64(s + colon + 1,
		    e - colon - 1, &b) || b == 0 || b > UINT32_MAX))
			return -1;
		if (b < a) {
			uint64_t t = a;

			a = b;
			b = t;
		}
		cb(arg, (uint32_t)a, (uint32_t)b);
		if (e < len && e + 1 == len)
			return -1;	/* a trailing comma */
		i = e + 1;
	}
	return 0;
}

const struct migrate_val *
migrate_vanished_set(const struct migrate_resp *r)
{
	const struct migrate_val *v;

	if (r->kind != MIGRATE_RESP_UNTAGGED || r->n < 2 ||
	    !is_migrate_val_atom(r->items, "VANISHED"))
		return NULL;
	v = r->items->next;
	if (v->kind == MIGRATE_VAL_LIST)
		v = v->next;
	return v != NULL && v->kind == MIGRATE_VAL_ATOM && v->next == NULL ?
	    v : NULL;
}

/* ---- Dates ------------------------------------------------------------ */

static const char months[][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool
num_read(const char *s, size_t len, size_t *i, size_t min, size_t max,
    int *n_out)
{
	size_t k = 0;
	int n = 0;

	while (*i < len && k < max && s[*i] >= '0' && s[*i] <= '9') {
		n = n * 10 + (s[*i] - '0');
		(*i)++;
		k++;
	}
	*n_out = n;
	return k >= min;
}

static bool
month_read(const char *s, size_t len, size_t *i, int *m_out)
{
	if (len - *i < 3)
		return false;
	for (int m = 0; m < 12; m++)
		if (strncasecmp(s + *i, months[m], 3) == 0) {
			*m_out = m;
			*i += 3;
			return true;
		}
	return false;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 0-based). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	m += 1;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool
zone_read(const char *s, size_t len, size_t *i, int *secs_out)
{
	int sign, z;

	if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
		return false;
	sign = s[*i] == '-' ? -1 : 1;
	(*i)++;
	if (!num_read(s, len, i, 4, 4, &z) || z % 100 >= 60)
		return false;
	*secs_out = sign * ((z / 100) * 3600 + (z % 100) * 60);
	return true;
}

static bool
time_make(int y, int mon, int d, int hh, int mm, int ss, int zone,
    int64_t *t_out)
{
	if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1900 ||
	    y > 9999)
		return false;
	*t_out = days_from_civil(y, mon, d) * 86400 + hh * 3600 + mm * 60 +
	    ss - zone;
	return true;
}

bool
migrate_date_time_parse(const char *s, size_t len, int64_t *t_out)
{
	size_t i = 0;
	int d, mon, y, hh, mm, ss, zone;

	if (i < len && s[i] == ' ')
		i++;
	if (!num_read(s, len, &i, 1, 2, &d) || i >= len || s[i++] != '-' ||
	    !month_read(s, len, &i, &mon) || i >= len || s[i++] != '-' ||
	    !num_read(s, len, &i, 4, 4, &y) || i >= len || s[i++] != ' ' ||
	    !num_read(s, len, &i, 2, 2, &hh) || i >= len || s[i++] != ':' ||
	    !num_read(s, len, &i, 2, 2, &mm) || i >= len || s[i++] != ':' ||
	    !num_read(s, len, &i, 2, 2, &ss) || i >= len || s[i++] != ' ' ||
	    !zone_read(s, len, &i, &zone) || i != len)
		return false;
	return time_make(y, mon, d, hh, mm, ss, zone, t_out);
}

static void
spaces_skip(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' ||
	    s[*i] == '\n'))
		(*i)++;
}

bool
migrate_rfc5322_date_parse(const char *s, size_t len, int64_t *t_out)
{
	size_t i = 0;
	int d, mon, y, hh, mm, ss = 0, zone = 0;

	spaces_skip(s, len, &i);
	/* An optional day name and comma (RFC 5322 §3.3). */
	if (i + 4 <= len && s[i + 3] == ',') {
		i += 4;
		spaces_skip(s, len, &i);
	}
	if (!num_read(s, len, &i, 1, 2, &d))
		return false;
	spaces_skip(s, len, &i);
	if (!month_read(s, len, &i, &mon))
		return false;
	spaces_skip(s, len, &i);
	if (!num_read(s, len, &i, 2, 4, &y))
		return false;
	if (y < 50)
		y += 2000;	/* RFC 5322 §4.3 obsolete two-digit years */
	else if (y < 1000)
		y += 1900;
	spaces_skip(s, len, &i);
	if (!num_read(s, len, &i, 1, 2, &hh) || i >= len || s[i++] != ':' ||
	    !num_read(s, len, &i, 2, 2, &mm))
		return false;
	if (i < len && s[i] == ':') {
		i++;
		if (!num_read(s, len, &i, 2, 2, &ss))
			return false;
	}
	spaces_skip(s, len, &i);
	if (i < len && (s[i] == '+' || s[i] == '-') &&
	    !zone_read(s, len, &i, &zone))
		return false;
	return time_make(y, mon, d, hh, mm, ss, zone, t_out);
}
