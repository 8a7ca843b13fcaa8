/*
 * imap_cmd_search: SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501
 * §6.4.4) with the result options of ESEARCH (RFC 4731, RFC 9051
 * §6.4.4.1), the saved result "$" and RETURN (SAVE) of SEARCHRES (RFC
 * 5182), and the MODSEQ key of CONDSTORE (RFC 7162 §3.1.5).
 *
 * The keys become one store_cond tree that the store evaluates over the
 * whole mailbox; the UIDs it finds are then mapped onto the session's view
 * (imap_view_find), and messages the session has not been told of yet are
 * dropped. Sequence sets name view messages, so they are resolved here:
 * at the top level, where every key is ANDed, they filter the view
 * directly; inside OR, NOT or parentheses they become UID ranges.
 *
 * Runs on the session's thread; the search itself is a synchronous store
 * read.
 */
#include "imap/imap_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

/* Nesting of parentheses, NOT and OR. With the levels the tree adds for
 * ON and for sequence sets, it stays below the store's own limit (32). */
#define SEARCH_DEPTH_MAX 16
/* Keys in one command, each key of a group or of NOT and OR counted. */
#define SEARCH_KEYS_MAX 512
/* Nodes of the condition tree, the UID ranges of nested sequence sets
 * included (the store refuses more than 10000). */
#define SEARCH_NODES_MAX 4096
/* Seconds in a day: ON and SENTON cover one (UTC) day. */
#define DAY_SECONDS 86400

#define BADCHARSET "[BADCHARSET (UTF-8 US-ASCII)]"

enum key_arg {
	KA_NONE,	/* kind as given, no argument */
	KA_FLAG,	/* FLAG_SET or FLAG_UNSET of flag */
	KA_STRING,	/* BODY, TEXT, or HEADER of field */
	KA_HEADER,	/* HEADER field-name string */
	KA_KEYWORD,	/* KEYWORD or UNKEYWORD flag-keyword */
	KA_DATE,	/* date, kind as given */
	KA_ON,		/* date, [since, since + 1 day) */
	KA_NUMBER,	/* number64 */
	KA_MODSEQ,	/* [entry-name entry-type] mod-sequence-valzer */
	KA_NOT,
	KA_OR,
	KA_UID,		/* sequence set of UIDs */
	KA_EMAILID,	/* objectid (RFC 8474 §6) */
	KA_RECENT,	/* RECENT (kind OR), NEW (AND), OLD (NOT) */
};

struct key_def {
	const char *name;
	enum key_arg arg;
	enum store_cond_kind kind;
	uint32_t flag;
	const char *field;
};

/* RFC 9051 §6.4.4 and RFC 3501 §6.4.4. RECENT, NEW and OLD are RFC 3501's;
 * under IMAP4rev2 no message is \Recent (RFC 9051 dropped it), so there
 * RECENT and NEW match nothing and OLD all. */
static const struct key_def key_defs[] = {
	{ "ALL", KA_NONE, STORE_COND_ALL, 0, NULL },
	{ "ANSWERED", KA_FLAG, STORE_COND_FLAG_SET, STORE_FLAG_ANSWERED,
	    NULL },
	{ "BCC", KA_STRING, STORE_COND_HEADER, 0, "Bcc" },
	{ "BEFORE", KA_DATE, STORE_COND_INTERNAL_BEFORE, 0, NULL },
	{ "BODY", KA_STRING, STORE_COND_BODY, 0, NULL },
	{ "CC", KA_STRING, STORE_COND_HEADER, 0, "Cc" },
	{ "DELETED", KA_FLAG, STORE_COND_FLAG_SET, STORE_FLAG_DELETED, NULL },
	{ "DRAFT", KA_FLAG, STORE_COND_FLAG_SET, STORE_FLAG_DRAFT, NULL },
	{ "EMAILID", KA_EMAILID, STORE_COND_OR, 0, NULL },
	{ "FLAGGED", KA_FLAG, STORE_COND_FLAG_SET, STORE_FLAG_FLAGGED, NULL },
	{ "FROM", KA_STRING, STORE_COND_HEADER, 0, "From" },
	{ "HEADER", KA_HEADER, STORE_COND_HEADER, 0, NULL },
	{ "KEYWORD", KA_KEYWORD, STORE_COND_KEYWORD, 0, NULL },
	{ "LARGER", KA_NUMBER, STORE_COND_LARGER, 0, NULL },
	{ "MODSEQ", KA_MODSEQ, STORE_COND_MODSEQ, 0, NULL },
	{ "NEW", KA_RECENT, STORE_COND_AND, 0, NULL },
	{ "NOT", KA_NOT, STORE_COND_NOT, 0, NULL },
	{ "OLD", KA_RECENT, STORE_COND_NOT, 0, NULL },
	{ "ON", KA_ON, STORE_COND_INTERNAL_SINCE, 0, NULL },
	{ "OR", KA_OR, STORE_COND_OR, 0, NULL },
	{ "RECENT", KA_RECENT, STORE_COND_OR, 0, NULL },
	/* RFC 8514 §4.3: every mailbox keeps save dates. */
	{ "SAVEDATESUPPORTED", KA_NONE, STORE_COND_ALL, 0, NULL },
	{ "SAVEDBEFORE", KA_DATE, STORE_COND_SAVED_BEFORE, 0, NULL },
	{ "SAVEDON", KA_ON, STORE_COND_SAVED_SINCE, 0, NULL },
	{ "SAVEDSINCE", KA_DATE, STORE_COND_SAVED_SINCE, 0, NULL },
	{ "SEEN", KA_FLAG, STORE_COND_FLAG_SET, STORE_FLAG_SEEN, NULL },
	{ "SENTBEFORE", KA_DATE, STORE_COND_SENT_BEFORE, 0, NULL },
	{ "SENTON", KA_ON, STORE_COND_SENT_SINCE, 0, NULL },
	{ "SENTSINCE", KA_DATE, STORE_COND_SENT_SINCE, 0, NULL },
	{ "SINCE", KA_DATE, STORE_COND_INTERNAL_SINCE, 0, NULL },
	{ "SMALLER", KA_NUMBER, STORE_COND_SMALLER, 0, NULL },
	{ "SUBJECT", KA_STRING, STORE_COND_HEADER, 0, "Subject" },
	{ "TEXT", KA_STRING, STORE_COND_TEXT, 0, NULL },
	/* No message has a THREADID (RFC 8474 §5.2: NIL). */
	{ "THREADID", KA_EMAILID, STORE_COND_OR, 0, NULL },
	{ "TO", KA_STRING, STORE_COND_HEADER, 0, "To" },
	{ "UID", KA_UID, STORE_COND_OR, 0, NULL },
	{ "UNANSWERED", KA_FLAG, STORE_COND_FLAG_UNSET, STORE_FLAG_ANSWERED,
	    NULL },
	{ "UNDELETED", KA_FLAG, STORE_COND_FLAG_UNSET, STORE_FLAG_DELETED,
	    NULL },
	{ "UNDRAFT", KA_FLAG, STORE_COND_FLAG_UNSET, STORE_FLAG_DRAFT, NULL },
	{ "UNFLAGGED", KA_FLAG, STORE_COND_FLAG_UNSET, STORE_FLAG_FLAGGED,
	    NULL },
	{ "UNKEYWORD", KA_KEYWORD, STORE_COND_NO_KEYWORD, 0, NULL },
	{ "UNSEEN", KA_FLAG, STORE_COND_FLAG_UNSET, STORE_FLAG_SEEN, NULL },
};

/* The key parser's state. */
struct kp {
	struct imap_session *s;
	struct imap_search_keys *k;
	size_t nkeys;
	size_t nnodes;
};

static int
kp_fail(struct kp *p, bool is_no, const char *error)
{
	p->k->is_no = is_no;
	p->k->error = error;
	return -1;
}

/* Appends a zeroed child to parent; NULL (error set) over the budget. The
 * array doubles at powers of two; moving it keeps every grandchild, whose
 * arrays are separate. */
static struct store_cond *
cond_add(struct kp *p, struct store_cond *parent)
{
	size_t n = parent->nchildren;

	if (++p->nnodes > SEARCH_NODES_MAX) {
		kp_fail(p, true, "[LIMIT] Search is too complex");
		return NULL;
	}
	if ((n & (n - 1)) == 0)
		parent->children = xrealloc(parent->children,
		    (n ? 2 * n : 1) * sizeof(*parent->children));
	memset(&parent->children[n], 0, sizeof(parent->children[n]));
	parent->nchildren = n + 1;
	return &parent->children[n];
}

static void
cond_deinit(struct store_cond *c)
{
	for (size_t i = 0; i < c->nchildren; i++)
		cond_deinit(&c->children[i]);
	free(c->children);
	c->children = NULL;
	c->nchildren = 0;
}

static bool
is_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t j = 1; j <= n; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* A search string: an astring (RFC 9051 §9 search-key uses astring). The
 * CHARSET is UTF-8 or its subset US-ASCII, so the bytes must be UTF-8. */
static int
string_arg(struct kp *p, const struct imap_arg *a, const char **str_out)
{
	const char *str;
	size_t len;

	if (!imap_arg_astring(a, &str, &len))
		return kp_fail(p, false, "Expected a string after the search "
		    "key");
	if (!is_utf8(str, len))
		return kp_fail(p, true, BADCHARSET " Search strings must be "
		    "UTF-8");
	*str_out = str;
	return 0;
}

/* RFC 5322 §3.6.8 field-name: printable US-ASCII except the colon. */
static bool
is_field_name(const char *s, size_t len)
{
	if (len == 0 || len > 256)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= ' ' || s[i] >= 127 || s[i] == ':')
			return false;
	}
	return true;
}

/* A sequence set (is_uid: of UIDs) as a key. At the top level it filters
 * the view; below, it becomes the UID ranges of the view messages it
 * names: consecutive view messages make one range, which contains no
 * other message the store holds (UIDs ascend with the view, and messages
 * the view lacks are newer than all of it). */
static int
set_key(struct kp *p, const struct imap_arg *a, bool is_uid, bool is_top,
    struct store_cond *out)
{
	const struct imap_view *v = p->s->view;
	size_t *idx, n;
	/* RFC 9051 §9 says a server "should" answer BAD to a sequence
	 * number beyond the last message; as a SEARCH key it only narrows
	 * the result, and clients send ranges that a concurrent EXPUNGE
	 * made stale, so such numbers match nothing, as in Dovecot. FETCH,
	 * STORE, COPY and MOVE still answer BAD. */
	int rc = imap_view_set_clamped(p->s, a, is_uid, &idx, &n);

	if (rc < 0)
		return kp_fail(p, false, "Invalid sequence set in SEARCH");
	if (is_top) {
		bool *mark = xcalloc(v->n + 1, sizeof(*mark));

		for (size_t i = 0; i < n; i++)
			mark[idx[i]] = true;
		if (p->k->in_set != NULL) {
			for (size_t i = 0; i < v->n; i++)
				mark[i] = mark[i] && p->k->in_set[i];
			free(p->k->in_set);
		}
		p->k->in_set = mark;
		free(idx);
		out->kind = STORE_COND_ALL;
		return 0;
	}
	out->kind = STORE_COND_OR;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct store_cond *c;

		while (j + 1 < n && idx[j + 1] == idx[j] + 1)
			j++;
		if ((c = cond_add(p, out)) == NULL) {
			free(idx);
			return -1;
		}
		c->kind = STORE_COND_UID_RANGE;
		c->n = v->msgs[idx[i]].uid;
		c->hi = v->msgs[idx[j]].uid;
		i = j + 1;
	}
	free(idx);
	return 0;
}

/* RECENT, NEW and OLD (RFC 3501 §6.4.4): the messages recent for this
 * session (imap_view.c) as UID ranges, as set_key makes them: NEW is
 * RECENT UNSEEN, OLD is NOT RECENT. Recent messages come in runs (each
 * SELECT or new mail claims the newest ones), so the ranges are few. */
static int
recent_key(struct kp *p, const struct key_def *d, struct store_cond *out)
{
	const struct imap_view *v = p->s->view;
	struct store_cond *recent = out;

	out->kind = d->kind;
	if (d->kind != STORE_COND_OR) {
		/* Both children first: adding one may move the array. */
		if (cond_add(p, out) == NULL ||
		    (d->kind == STORE_COND_AND && cond_add(p, out) == NULL))
			return -1;
		recent = &out->children[0];
		recent->kind = STORE_COND_OR;
		if (d->kind == STORE_COND_AND) {
			out->children[1].kind = STORE_COND_FLAG_UNSET;
			out->children[1].n = STORE_FLAG_SEEN;
		}
	}
	if (p->s->is_rev2)
		return 0;
	for (size_t i = 0; i < v->n;) {
		size_t j = i;
		struct store_cond *c;

		if (!v->msgs[i].is_recent) {
			i++;
			continue;
		}
		while (j + 1 < v->n && v->msgs[j + 1].is_recent)
			j++;
		if ((c = cond_add(p, recent)) == NULL)
			return -1;
		c->kind = STORE_COND_UID_RANGE;
		c->n = v->msgs[i].uid;
		c->hi = v->msgs[j].uid;
		i = j + 1;
	}
	return 0;
}

static const struct key_def *
key_find(const struct imap_arg *a)
{
	if (a->kind != IMAP_ARG_ATOM)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(key_defs); i++) {
		if (strcasecmp(a->str, key_defs[i].name) == 0)
			return &key_defs[i];
	}
	return NULL;
}

static int key_parse(struct kp *p, const struct imap_arg *args, size_t n,
    size_t *pos, unsigned depth, bool is_top, struct store_cond *out);

/* RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer.
 * postern keeps one MODSEQ per message, which is at least that of any of
 * its flags, so the entry is checked for syntax and then ignored. */
static int
modseq_key(struct kp *p, const struct imap_arg *args, size_t n, size_t *pos,
    struct store_cond *out)
{
	uint64_t value;

	if (*pos < n && (args[*pos].kind == IMAP_ARG_QUOTED ||
	    args[*pos].kind == IMAP_ARG_LITERAL)) {
		const struct imap_arg *type;

		if (strncasecmp(args[*pos].str, "/flags/", 7) != 0 ||
		    args[*pos].len <= 7)
			return kp_fail(p, false, "MODSEQ entry names look like "
			    "\"/flags/\\\\Seen\"");
		if (++*pos >= n)
			return kp_fail(p, false, "MODSEQ entry needs a type");
		type = &args[(*pos)++];
		if (!is_imap_arg_atom(type, "priv") &&
		    !is_imap_arg_atom(type, "shared") &&
		    !is_imap_arg_atom(type, "all"))
			return kp_fail(p, false, "MODSEQ entry type is priv, "
			    "shared or all");
	}
	if (*pos >= n || !imap_arg_number64(&args[*pos], &value))
		return kp_fail(p, false, "MODSEQ needs a number");
	(*pos)++;
	out->kind = STORE_COND_MODSEQ;
	out->n = value;
	p->k->has_modseq = true;
	return 0;
}

/* KEYWORD and UNKEYWORD take a flag-keyword; a system flag named there is
 * read as that flag (for clients that send "KEYWORD \Seen"). */
static int
keyword_key(struct kp *p, const struct key_def *d, const struct imap_arg *a,
    struct store_cond *out)
{
	uint32_t flags;
	char *kw;

	if (a->kind != IMAP_ARG_ATOM || imap_flags_parse(a, &flags, &kw) < 0)
		return kp_fail(p, false, "Expected a keyword");
	if (kw != NULL) {
		p->k->owned = xrealloc(p->k->owned, (p->k->nowned + 1) *
		    sizeof(*p->k->owned));
		p->k->owned[p->k->nowned++] = kw;
		out->kind = d->kind;
		out->text = kw;
		return 0;
	}
	out->kind = d->kind == STORE_COND_KEYWORD ? STORE_COND_FLAG_SET :
	    STORE_COND_FLAG_UNSET;
	out->n = flags;
	return 0;
}

/* ON, SENTON and SAVEDON: the day, [d, d + 1 day). Dates are days in UTC: the
 * store keeps instants, not the zone a Date: header was written in. */
static int
on_key(struct kp *p, const struct key_def *d, int64_t t,
    struct store_cond *out)
{
	struct store_cond *since, *before;

	out->kind = STORE_COND_AND;
	if ((since = cond_add(p, out)) == NULL)
		return -1;
	since->kind = d->kind;
	since->n = (uint64_t)t;
	if ((before = cond_add(p, out)) == NULL)
		return -1;
	before->kind = d->kind == STORE_COND_SENT_SINCE ?
	    STORE_COND_SENT_BEFORE : d->kind == STORE_COND_SAVED_SINCE ?
	    STORE_COND_SAVED_BEFORE : STORE_COND_INTERNAL_BEFORE;
	before->n = (uint64_t)(t + DAY_SECONDS);
	return 0;
}

/* EMAILID objectid: the messages of the mailbox with that EMAILID, as UID
 * ranges (an OR of none matches nothing); THREADID objectid: none. */
static int
emailid_key(struct kp *p, const struct key_def *d, const struct imap_arg *a,
    struct store_cond *out)
{
	uint32_t *uids;
	size_t n;
	enum store_err err;

	/* RFC 8474 §6: objectid = 1*255(ALPHA / DIGIT / "_" / "-"). */
	if (a->kind != IMAP_ARG_ATOM || a->len == 0 || a->len > 255 ||
	    strspn(a->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
	    "WXYZ0123456789_-") != a->len)
		return kp_fail(p, false, "Expected an object identifier");
	out->kind = STORE_COND_OR;
	if (strcmp(d->name, "THREADID") == 0)
		return 0;
	if (imap_email_id_uids(p->s, a->str, &uids, &n, &err) < 0)
		return kp_fail(p, true, "[UNAVAILABLE] Cannot read the "
		    "mailbox, try again later");
	for (size_t i = 0; i < n; i++) {
		struct store_cond *c = cond_add(p, out);

		if (c == NULL) {
			free(uids);
			return -1;
		}
		c->kind = STORE_COND_UID_RANGE;
		c->n = uids[i];
		c->hi = uids[i];
	}
	free(uids);
	return 0;
}

/* Reads the key at args[*pos] (and its arguments) into out. */
static int
key_parse(struct kp *p, const struct imap_arg *args, size_t n, size_t *pos,
    unsigned depth, bool is_top, struct store_cond *out)
{
	const struct imap_arg *a = &args[*pos];
	const struct key_def *d;
	const char *str;
	size_t len;
	int64_t t;

	if (depth > SEARCH_DEPTH_MAX)
		return kp_fail(p, true, "[LIMIT] Search keys are nested too "
		    "deeply");
	if (++p->nkeys > SEARCH_KEYS_MAX)
		return kp_fail(p, true, "[LIMIT] Too many search keys");
	(*pos)++;
	if (a->kind == IMAP_ARG_LIST) {
		/* "(" search-key *(SP search-key) ")": all of them. */
		size_t i = 0;

		if (a->len == 0)
			return kp_fail(p, false, "Empty parentheses in SEARCH");
		out->kind = STORE_COND_AND;
		while (i < a->len) {
			struct store_cond *c = cond_add(p, out);

			if (c == NULL || key_parse(p, a->list, a->len, &i,
			    depth + 1, false, c) < 0)
				return -1;
		}
		return 0;
	}
	if (a->kind == IMAP_ARG_ATOM && a->len > 0 &&
	    (strchr("0123456789*$", a->str[0]) != NULL)) {
		/* RFC 9586 §3.1: no sequence numbers under UIDONLY ("$"
		 * holds UIDs). */
		if (p->s->is_uidonly && strcmp(a->str, "$") != 0)
			return kp_fail(p, false, "[UIDREQUIRED] UIDONLY is "
			    "enabled: use the UID search key");
		return set_key(p, a, false, is_top, out);
	}
	if ((d = key_find(a)) == NULL)
		return kp_fail(p, false, "Unknown search key");
	out->kind = d->kind;
	if (d->arg != KA_NONE && d->arg != KA_FLAG &&
	    d->arg != KA_MODSEQ && d->arg != KA_RECENT && *pos >= n)
		return kp_fail(p, false, "Search key needs an argument");
	switch (d->arg) {
	case KA_NONE:
		return 0;
	case KA_FLAG:
		out->n = d->flag;
		return 0;
	case KA_STRING:
		if (string_arg(p, &args[(*pos)++], &str) < 0)
			return -1;
		out->text = str;
		out->field = d->field;
		return 0;
	case KA_HEADER:
		if (!imap_arg_astring(&args[*pos], &str, &len) ||
		    !is_field_name(str, len))
			return kp_fail(p, false, "HEADER needs a field name");
		out->field = str;
		if (++*pos >= n)
			return kp_fail(p, false, "HEADER needs a string");
		/* RFC 9051 §6.4.4: an empty string matches every message
		 * that has the field. */
		if (string_arg(p, &args[(*pos)++], &str) < 0)
			return -1;
		out->text = str;
		return 0;
	case KA_KEYWORD:
		return keyword_key(p, d, &args[(*pos)++], out);
	case KA_DATE:
	case KA_ON:
		if (!imap_arg_astring(&args[(*pos)++], &str, &len) ||
		    !imap_date_parse(str, &t))
			return kp_fail(p, false, "Expected a date such as "
			    "1-Feb-2024");
		if (d->arg == KA_ON)
			return on_key(p, d, t, out);
		out->n = (uint64_t)t;
		return 0;
	case KA_NUMBER:
		if (!imap_arg_number64(&args[(*pos)++], &out->n))
			return kp_fail(p, false, "Expected a number");
		return 0;
	case KA_MODSEQ:
		return modseq_key(p, args, n, pos, out);
	case KA_NOT:
		out = cond_add(p, out);
		return out == NULL ? -1 :
		    key_parse(p, args, n, pos, depth + 1, false, out);
	case KA_OR:
		for (int i = 0; i < 2; i++) {
			struct store_cond *c;

			if (*pos >= n)
				return kp_fail(p, false, "OR needs two search "
				    "keys");
			if ((c = cond_add(p, out)) == NULL ||
			    key_parse(p, args, n, pos, depth + 1, false, c) < 0)
				return -1;
		}
		return 0;
	case KA_UID:
		return set_key(p, &args[(*pos)++], true, is_top, out);
	case KA_EMAILID:
		return emailid_key(p, d, &args[(*pos)++], out);
	case KA_RECENT:
		return recent_key(p, d, out);
	}
	panic("search: key argument %d", (int)d->arg);
}

int
imap_search_keys_parse(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, struct imap_search_keys *k)
{
	struct kp p = { .s = s, .k = k };
	size_t pos = 0;

	memset(k, 0, sizeof(*k));
	k->root.kind = STORE_COND_AND;
	if (nargs == 0)
		return kp_fail(&p, false, "SEARCH needs at least one key");
	while (pos < nargs) {
		struct store_cond *c = cond_add(&p, &k->root);

		if (c == NULL ||
		    key_parse(&p, args, nargs, &pos, 0, true, c) < 0)
			return -1;
	}
	return 0;
}

void
imap_search_keys_deinit(struct imap_search_keys *k)
{
	cond_deinit(&k->root);
	free(k->in_set);
	k->in_set = NULL;
	for (size_t i = 0; i < k->nowned; i++)
		free(k->owned[i]);
	free(k->owned);
	k->owned = NULL;
	k->nowned = 0;
}

/* ---- The command --------------------------------------------------------- */

/* RFC 4731 result options. */
enum {
	RET_MIN = 1 << 0,
	RET_MAX = 1 << 1,
	RET_ALL = 1 << 2,
	RET_COUNT = 1 << 3,
	RET_SAVE = 1 << 4,	/* RFC 5182 */
};

struct search {
	const struct imap_view *v;
	bool is_uid;
	size_t *hits;		/* ascending view indexes */
	size_t nhits;
};

static uint32_t
hit_number(const struct search *q, size_t i)
{
	size_t at = q->hits[i];

	return q->is_uid ? q->v->msgs[at].uid : (uint32_t)(at + 1);
}

/* RFC 4731 §3.1 ALL: a compact sequence set of the matching numbers.
 * A range of UIDs is a run of consecutive UIDs: 1:3,5:7, never 1:7 when
 * UID 4 is gone, since ALL names only UIDs that match (imaptest's esearch
 * script checks this). */
static void
write_all(struct imap_out *o, const struct search *q)
{
	for (size_t i = 0; i < q->nhits;) {
		size_t j = i;

		while (j + 1 < q->nhits && q->hits[j + 1] == q->hits[j] + 1 &&
		    hit_number(q, j + 1) == hit_number(q, j) + 1)
			j++;
		if (j == i)
			imap_out_printf(o, "%s%" PRIu32, i ? "," : "",
			    hit_number(q, i));
		else
			imap_out_printf(o, "%s%" PRIu32 ":%" PRIu32, i ? "," : "",
			    hit_number(q, i), hit_number(q, j));
		i = j + 1;
	}
}

/* The current MODSEQ of view message at: the view's, or newer if the
 * store changed the message since the view caught up (changed[]). */
static uint64_t
hit_modseq(struct imap_session *s, const struct search *q, size_t at,
    const struct store_msg *changed, size_t nchanged)
{
	uint32_t uid = q->v->msgs[at].uid;
	uint64_t m = imap_view_modseq(s, at);
	size_t lo = 0, hi = nchanged;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (changed[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < nchanged && changed[lo].uid == uid &&
	    changed[lo].modseq > m)
		m = changed[lo].modseq;
	return m;
}

/* RFC 7162 §3.1.5: the highest MODSEQ of the messages the reply reports:
 * all of them (ends 0), or only those ends (RET_MIN, RET_MAX) names when
 * they are all it reports: MIN alone is the first message's MODSEQ. */
static uint64_t
reply_modseq(struct imap_session *s, const struct search *q,
    unsigned ends)
{
	struct store_msg *changed = NULL;
	uint32_t *expunged = NULL;
	size_t nchanged = 0, nexpunged = 0;
	enum store_err err;
	uint64_t best = 0;

	if (store_msg_changes(s->ctx->store, q->v->mailbox, q->v->modseq,
	    &changed, &nchanged, &expunged, &nexpunged, NULL, &err) < 0) {
		changed = NULL;
		nchanged = 0;
	}
	for (size_t i = 0; i < q->nhits; i++) {
		uint64_t m;

		if (ends != 0 && !((ends & RET_MIN) && i == 0) &&
		    !((ends & RET_MAX) && i + 1 == q->nhits))
			continue;
		m = hit_modseq(s, q, q->hits[i], changed, nchanged);
		if (m > best)
			best = m;
	}
	store_msg_list_free(&changed, nchanged);
	free(expunged);
	return best;
}

/* RFC 5182 §2.4: with MIN or MAX but neither ALL nor COUNT, only those
 * messages are saved. */
static void
save_result(struct imap_view *v, const struct search *q, unsigned ret)
{
	bool is_ends_only = !(ret & (RET_ALL | RET_COUNT)) &&
	    (ret & (RET_MIN | RET_MAX));
	size_t n = 0;

	free(v->saved);
	v->saved = xcalloc(q->nhits + 1, sizeof(*v->saved));
	for (size_t i = 0; i < q->nhits; i++) {
		if (is_ends_only && !((ret & RET_MIN) && i == 0) &&
		    !((ret & RET_MAX) && i + 1 == q->nhits))
			continue;
		v->saved[n++] = v->msgs[q->hits[i]].uid;
	}
	v->nsaved = n;
}

static void
saved_clear(struct imap_view *v)
{
	free(v->saved);
	v->saved = NULL;
	v->nsaved = 0;
}

/* Reads "RETURN (options)"; returns 0, or -1 with *error_out set. */
static int
return_parse(const struct imap_arg *a, unsigned *ret_out,
    const char **error_out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL },
		{ "COUNT", RET_COUNT }, { "SAVE", RET_SAVE },
	};

	*ret_out = 0;
	if (a->kind != IMAP_ARG_LIST) {
		*error_out = "RETURN needs a list of result options";
		return -1;
	}
	for (size_t i = 0; i < a->len; i++) {
		size_t j;

		for (j = 0; j < ARRAY_LEN(opts); j++) {
			if (is_imap_arg_atom(&a->list[i], opts[j].name))
				break;
		}
		if (j == ARRAY_LEN(opts)) {
			*error_out = "Unknown search result option";
			return -1;
		}
		*ret_out |= opts[j].bit;
	}
	/* RFC 4731 §3.1: RETURN () means ALL. */
	if (*ret_out == 0)
		*ret_out = RET_ALL;
	return 0;
}

static void
reply_search(struct imap_session *s, const struct search *q, bool has_modseq)
{
	struct imap_out o = { .s = s };

	imap_out_printf(&o, "* SEARCH");
	for (size_t i = 0; i < q->nhits; i++)
		imap_out_printf(&o, " %" PRIu32, hit_number(q, i));
	/* RFC 7162 §3.1.5: no MODSEQ when nothing matched. */
	if (has_modseq && q->nhits > 0)
		imap_out_printf(&o, " (MODSEQ %" PRIu64 ")",
		    reply_modseq(s, q, 0));
	imap_out_printf(&o, "\r\n");
	imap_out_flush(&o);
}

/* RFC 4731 §3.1, RFC 9051 §7.3.4: MIN, MAX and ALL are left out when
 * nothing matched; COUNT is always there when asked for. */
static void
reply_esearch(struct imap_session *s, const struct search *q, unsigned ret,
    bool has_modseq)
{
	struct imap_out o = { .s = s };
	bool is_ends_only = !(ret & (RET_ALL | RET_COUNT));

	imap_out_printf(&o, "* ESEARCH (TAG \"%s\")%s", s->cmd->tag,
	    q->is_uid ? " UID" : "");
	if (q->nhits > 0 && (ret & RET_MIN))
		imap_out_printf(&o, " MIN %" PRIu32, hit_number(q, 0));
	if (q->nhits > 0 && (ret & RET_MAX))
		imap_out_printf(&o, " MAX %" PRIu32, hit_number(q, q->nhits - 1));
	if (ret & RET_COUNT)
		imap_out_printf(&o, " COUNT %zu", q->nhits);
	if (q->nhits > 0 && (ret & RET_ALL)) {
		imap_out_printf(&o, " ALL ");
		write_all(&o, q);
	}
	if (has_modseq && q->nhits > 0)
		imap_out_printf(&o, " MODSEQ %" PRIu64,
		    reply_modseq(s, q, is_ends_only ?
		    ret & (RET_MIN | RET_MAX) : 0));
	imap_out_printf(&o, "\r\n");
	imap_out_flush(&o);
}

/* The view messages the store found, in order: those the session knows,
 * not expunged, and in every top-level sequence set. */
static void
hits_collect(struct search *q, const struct imap_search_keys *k,
    const uint32_t *uids, size_t n)
{
	q->hits = xcalloc(n + 1, sizeof(*q->hits));
	q->nhits = 0;
	for (size_t i = 0; i < n; i++) {
		size_t at = imap_view_find(q->v, uids[i]);

		if (at == SIZE_MAX || q->v->msgs[at].is_expunged)
			continue;
		if (k->in_set != NULL && !k->in_set[at])
			continue;
		q->hits[q->nhits++] = at;
	}
}

static const char *
store_failure_text(enum store_err err)
{
	switch (err) {
	case STORE_NOT_FOUND:
		return "[NONEXISTENT] The selected mailbox no longer exists";
	case STORE_INVALID:
		return "[LIMIT] Search is too complex";
	default:
		return "[UNAVAILABLE] Search failed, try again later";
	}
}

void
imap_cmd_search(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->nargs, pos = 0, nuids = 0;
	unsigned ret = 0;
	bool is_esearch = s->is_rev2;
	struct imap_search_keys k;
	struct search q = { .v = v, .is_uid = cmd->is_uid };
	uint32_t *uids = NULL;
	const char *error;
	enum store_err err;

	if (v == NULL) {
		imap_done(s, "BAD", "Select a mailbox first");
		return;
	}
	if (pos < nargs && is_imap_arg_atom(&args[pos], "RETURN")) {
		if (++pos >= nargs || return_parse(&args[pos], &ret,
		    &error) < 0) {
			imap_done(s, "BAD", "%s", pos >= nargs ?
			    "RETURN needs a list of result options" : error);
			return;
		}
		pos++;
		is_esearch = true;
	}
	/* RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH, ALL unless told. */
	if (is_esearch && ret == 0)
		ret = RET_ALL;
	if (pos < nargs && is_imap_arg_atom(&args[pos], "CHARSET")) {
		const char *cs;
		size_t len;

		if (++pos >= nargs || !imap_arg_astring(&args[pos], &cs,
		    &len)) {
			imap_done(s, "BAD", "CHARSET needs a name");
			return;
		}
		pos++;
		if (strcasecmp(cs, "UTF-8") != 0 &&
		    strcasecmp(cs, "US-ASCII") != 0) {
			/* RFC 5182 §2.1: a SAVE that fails with NO leaves
			 * the saved result empty. */
			if (ret & RET_SAVE)
				saved_clear(v);
			imap_done(s, "NO", BADCHARSET " Supported charsets "
			    "are UTF-8 and US-ASCII");
			return;
		}
	}
	if (imap_search_keys_parse(s, args + pos, nargs - pos, &k) < 0) {
		/* RFC 5182 §2.1: BAD leaves "$" alone, NO empties it. */
		bool is_no = k.is_no;

		error = k.error;
		if (is_no && (ret & RET_SAVE))
			saved_clear(v);
		imap_search_keys_deinit(&k);
		imap_done(s, is_no ? "NO" : "BAD", "%s", error);
		return;
	}
	if (store_search(s->ctx->store, v->mailbox, &k.root, &uids, &nuids,
	    &err) < 0) {
		if (err != STORE_INVALID)
			log_error(s->sid, "imap.search_failed error=\"%s\"",
			    store_err_text(err));
		if (ret & RET_SAVE)
			saved_clear(v);
		imap_search_keys_deinit(&k);
		imap_done(s, "NO", "%s", store_failure_text(err));
		return;
	}
	hits_collect(&q, &k, uids, nuids);
	free(uids);
	/* RFC 7162 §3.1: MODSEQ in SEARCH is a CONDSTORE enabling command;
	 * the mailbox selected before it learns its HIGHESTMODSEQ now. */
	if (k.has_modseq && !s->is_condstore) {
		s->is_condstore = true;
		imap_printf(s, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n",
		    v->modseq);
	}
	if (!is_esearch)
		reply_search(s, &q, k.has_modseq);
	else if (ret & ~(unsigned)RET_SAVE)
		reply_esearch(s, &q, ret, k.has_modseq);
	/* RFC 5182 §2.1: SAVE alone answers no ESEARCH at all. */
	if (ret & RET_SAVE)
		save_result(v, &q, ret);
	free(q.hits);
	imap_search_keys_deinit(&k);
	imap_done(s, "OK", "%s completed", cmd->is_uid ? "UID SEARCH" :
	    "SEARCH");
}
