/*
 * imap_cmd_sort: SORT and UID SORT (RFC 5256 §3), with the DISPLAYFROM and
 * DISPLAYTO keys of SORT=DISPLAY (RFC 5957) and the result options of
 * ESORT (RFC 5267 §3: RETURN (MIN MAX COUNT ALL), answered as ESEARCH,
 * and SAVE of SEARCHRES, RFC 5182). Also what THREAD (imap_cmd_thread.c)
 * shares with it: the charset, the search keys and the messages' cached
 * data.
 *
 * The search keys are SEARCH's (imap_search_keys_parse, store_search);
 * what the keys compare comes from store_sort_list, the data cached at
 * delivery (decoded Subject, ENVELOPE, Date:, ids): no message is read.
 * Strings compare by their i;unicode-casemap keys (RFC 5256 §7 asks for
 * I18NLEVEL=1's collation). Runs on the session's thread; the reads are
 * synchronous store reads, as SEARCH's are.
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
#include "mime/mime.h"

/* Sort keys in one SORT (each key once is enough; REVERSE doubles). */
#define SORT_KEYS_MAX 16

#define BADCHARSET "[BADCHARSET (UTF-8 US-ASCII)]"

enum sort_key {
	SK_ARRIVAL,
	SK_CC,
	SK_DATE,
	SK_FROM,
	SK_SIZE,
	SK_SUBJECT,
	SK_TO,
	SK_DISPLAYFROM,
	SK_DISPLAYTO,
};

static const struct {
	const char *name;
	enum sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", SK_ARRIVAL }, { "CC", SK_CC }, { "DATE", SK_DATE },
	{ "FROM", SK_FROM }, { "SIZE", SK_SIZE }, { "SUBJECT", SK_SUBJECT },
	{ "TO", SK_TO }, { "DISPLAYFROM", SK_DISPLAYFROM },
	{ "DISPLAYTO", SK_DISPLAYTO },
};

/* ESORT result options (RFC 5267 §3.1, RFC 4731, RFC 5182). */
enum {
	RET_MIN = 1 << 0,
	RET_MAX = 1 << 1,
	RET_ALL = 1 << 2,
	RET_COUNT = 1 << 3,
	RET_SAVE = 1 << 4,
};

/* ---- Shared with THREAD --------------------------------------------- */

bool
is_imap_sort_charset(const struct imap_arg *a)
{
	const char *cs;
	size_t len;

	return imap_arg_astring(a, &cs, &len) &&
	    (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0);
}

void
imap_sort_rows_deinit(struct imap_sort_rows *r)
{
	store_sort_list_free(&r->list, r->nlist);
	free(r->rows);
	memset(r, 0, sizeof(*r));
}

/* Is the tree (the AND of the top-level keys) true of every message? */
static bool
is_match_all(const struct store_cond *root)
{
	for (size_t i = 0; i < root->nchildren; i++) {
		if (root->children[i].kind != STORE_COND_ALL)
			return false;
	}
	return true;
}

int
imap_sort_rows_get(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, unsigned what, struct imap_sort_rows *r)
{
	const struct imap_view *v = s->view;
	struct imap_search_keys k;
	uint32_t *uids = NULL;
	size_t nuids = 0, j = 0;
	bool *hit;
	enum store_err err;

	memset(r, 0, sizeof(*r));
	if (imap_search_keys_parse(s, args, nargs, &k) < 0) {
		r->is_no = k.is_no;
		r->error = k.error;
		imap_search_keys_deinit(&k);
		return -1;
	}
	/* Clients mostly sort ALL (or a sequence set, which the view
	 * resolves): the store then has nothing to find. */
	if (!is_match_all(&k.root) && store_search(s->ctx->store, v->mailbox,
	    &k.root, &uids, &nuids, &err) < 0)
		goto store_failed;
	/* The view messages the keys match: known to the session, not
	 * expunged, in every top-level sequence set. */
	hit = xcalloc(v->n + 1, sizeof(*hit));
	if (is_match_all(&k.root)) {
		for (size_t i = 0; i < v->n; i++)
			hit[i] = !v->msgs[i].is_expunged &&
			    (k.in_set == NULL || k.in_set[i]);
	}
	for (size_t i = 0; i < nuids; i++) {
		size_t at = imap_view_find(v, uids[i]);

		if (at == SIZE_MAX || v->msgs[at].is_expunged)
			continue;
		if (k.in_set != NULL && !k.in_set[at])
			continue;
		hit[at] = true;
	}
	free(uids);
	r->has_modseq = k.has_modseq;
	imap_search_keys_deinit(&k);
	if (v->n > 0 && store_sort_list(s->ctx->store, v->mailbox,
	    v->msgs[0].uid, v->msgs[v->n - 1].uid, what, &r->list, &r->nlist,
	    &err) < 0) {
		free(hit);
		goto store_failed_nokeys;
	}
	/* Both ascend by UID: walk them together. */
	r->rows = xcalloc(v->n + 1, sizeof(*r->rows));
	for (size_t i = 0; i < v->n; i++) {
		while (j < r->nlist && r->list[j].uid < v->msgs[i].uid)
			j++;
		if (!hit[i] || j >= r->nlist ||
		    r->list[j].uid != v->msgs[i].uid)
			continue;
		r->rows[r->n].msg = &r->list[j];
		r->rows[r->n].at = i;
		r->n++;
	}
	free(hit);
	return 0;
store_failed:
	free(uids);
	imap_search_keys_deinit(&k);
store_failed_nokeys:
	if (err != STORE_INVALID && err != STORE_NOT_FOUND)
		log_error(s->sid, "imap.sort_failed error=\"%s\"",
		    store_err_text(err));
	r->is_no = true;
	r->error = err == STORE_NOT_FOUND ?
	    "[NONEXISTENT] The selected mailbox no longer exists" :
	    err == STORE_INVALID ? "[LIMIT] Search is too complex" :
	    "[UNAVAILABLE] Sort failed, try again later";
	store_sort_list_free(&r->list, r->nlist);
	r->nlist = 0;
	return -1;
}

/* RFC 7162 §3.1.5: the MODSEQ key enables CONDSTORE (the mailbox learns
 * its HIGHESTMODSEQ now); the reply then ends with the highest MODSEQ of
 * the messages it names. */
uint64_t
imap_sort_modseq(struct imap_session *s, const struct imap_sort_rows *r)
{
	uint64_t best = 0;

	if (!s->is_condstore) {
		s->is_condstore = true;
		imap_printf(s, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n",
		    s->view->modseq);
	}
	for (size_t i = 0; i < r->n; i++) {
		uint64_t m = imap_view_modseq(s, r->rows[i].at);

		if (m > best)
			best = m;
	}
	return best;
}

int64_t
imap_sort_sent_date(const struct store_sort_msg *m)
{
	/* RFC 5256 §2.2: the Date: header, or else the INTERNALDATE. */
	return m->date >= 0 ? m->date : m->internal_date;
}

/* ---- SORT ----------------------------------------------------------- */

struct crit {
	enum sort_key key;
	bool is_reverse;
};

/* One message being sorted, with its keys. */
struct item {
	const struct imap_sort_row *row;
	int64_t num;			/* ARRIVAL, DATE or SIZE */
	char *str[SK_DISPLAYTO + 1];	/* collation keys, or NULL */
};

struct crits {
	const struct crit *v;
	size_t n;
};

/* For qsort_r(): workers on several threads sort at once. */
static int
item_cmp(const void *pa, const void *pb, void *arg)
{
	const struct item *a = pa, *b = pb;
	const struct crits *c = arg;

	for (size_t i = 0; i < c->n; i++) {
		enum sort_key key = c->v[i].key;
		int r = 0;
		int64_t x, y;

		switch (key) {
		case SK_ARRIVAL:
			x = a->row->msg->internal_date;
			y = b->row->msg->internal_date;
			r = x < y ? -1 : x > y;
			break;
		case SK_DATE:
			x = imap_sort_sent_date(a->row->msg);
			y = imap_sort_sent_date(b->row->msg);
			r = x < y ? -1 : x > y;
			break;
		case SK_SIZE:
			r = a->row->msg->size < b->row->msg->size ? -1 :
			    a->row->msg->size > b->row->msg->size;
			break;
		default:
			r = strcmp(a->str[key], b->str[key]);
			break;
		}
		if (r != 0)
			return c->v[i].is_reverse ? -r : r;
	}
	/* RFC 5256 §3: messages that compare equal stay in mailbox
	 * order. */
	return a->row->at < b->row->at ? -1 : a->row->at > b->row->at;
}

/* The collation key of key for message m (RFC 5256 §3, RFC 5957 §2). */
static char *
item_key(const struct store_sort_msg *m, enum sort_key key)
{
	struct mime_envelope_addr a;
	char *s, *k;
	enum mime_envelope_field f;

	if (key == SK_SUBJECT) {
		s = mime_subject_base(m->subject, NULL);
		k = mime_collate_key(s);
		free(s);
		return k;
	}
	f = key == SK_FROM || key == SK_DISPLAYFROM ? MIME_ENVELOPE_FROM :
	    key == SK_CC ? MIME_ENVELOPE_CC : MIME_ENVELOPE_TO;
	if (mime_envelope_address(m->envelope, f, &a) < 0)
		return xstrdup("");
	/* FROM, TO, CC: the addr-mailbox (local part) of the first
	 * address; DISPLAY*: its decoded display name or addr-spec. */
	if (key == SK_DISPLAYFROM || key == SK_DISPLAYTO)
		s = mime_envelope_display(&a);
	else
		s = xstrdup(a.mailbox != NULL ? a.mailbox : "");
	mime_envelope_addr_deinit(&a);
	k = mime_collate_key(s);
	free(s);
	return k;
}

/* Reads "(" sort-criterion *(SP sort-criterion) ")". */
static int
crits_parse(const struct imap_arg *a, struct crit *crits, size_t *n_out,
    unsigned *what_out)
{
	size_t n = 0;
	bool is_reverse = false;

	*what_out = 0;
	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		size_t j;

		if (is_imap_arg_atom(&a->list[i], "REVERSE")) {
			if (is_reverse)
				return -1;
			is_reverse = true;
			continue;
		}
		for (j = 0; j < ARRAY_LEN(sort_keys); j++) {
			if (is_imap_arg_atom(&a->list[i], sort_keys[j].name))
				break;
		}
		if (j == ARRAY_LEN(sort_keys) || n == SORT_KEYS_MAX)
			return -1;
		crits[n].key = sort_keys[j].key;
		crits[n].is_reverse = is_reverse;
		if (crits[n].key == SK_SUBJECT)
			*what_out |= STORE_SORT_SUBJECT;
		else if (crits[n].key != SK_ARRIVAL &&
		    crits[n].key != SK_DATE && crits[n].key != SK_SIZE)
			*what_out |= STORE_SORT_ENVELOPE;
		n++;
		is_reverse = false;
	}
	if (is_reverse)
		return -1;
	*n_out = n;
	return 0;
}

static int
return_parse(const struct imap_arg *a, unsigned *ret_out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL },
		{ "COUNT", RET_COUNT }, { "SAVE", RET_SAVE },
	};

	*ret_out = 0;
	if (a->kind != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		size_t j;

		for (j = 0; j < ARRAY_LEN(opts); j++) {
			if (is_imap_arg_atom(&a->list[i], opts[j].name))
				break;
		}
		if (j == ARRAY_LEN(opts))
			return -1;
		*ret_out |= opts[j].bit;
	}
	/* RFC 4731 §3.1: RETURN () means ALL. */
	if (*ret_out == 0)
		*ret_out = RET_ALL;
	return 0;
}

static uint32_t
item_number(const struct item *it, bool is_uid)
{
	return is_uid ? it->row->msg->uid : (uint32_t)(it->row->at + 1);
}

/* RFC 5267 §3.1 ALL: every number in sort order, as a sequence set: a
 * run of ascending consecutive numbers is written as a range. */
static void
write_all(struct imap_out *o, const struct item *items,
    size_t n, bool is_uid)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		/* View neighbours with consecutive numbers: a UID range
		 * never spans a UID that is gone (it would name it). */
		while (j + 1 < n &&
		    items[j + 1].row->at == items[j].row->at + 1 &&
		    item_number(&items[j + 1], is_uid) ==
		    item_number(&items[j], is_uid) + 1)
			j++;
		if (j == i)
			imap_out_printf(o, "%s%" PRIu32, i ? "," : "",
			    item_number(&items[i], is_uid));
		else
			imap_out_printf(o, "%s%" PRIu32 ":%" PRIu32, i ? "," : "",
			    item_number(&items[i], is_uid),
			    item_number(&items[j], is_uid));
		i = j + 1;
	}
}

static void
save_result(struct imap_view *v, const struct item *items, size_t n,
    unsigned ret)
{
	bool is_ends_only = !(ret & (RET_ALL | RET_COUNT)) &&
	    (ret & (RET_MIN | RET_MAX));
	size_t k = 0;

	/* RFC 5182: "$" is a set (ascending UIDs); with MIN or MAX alone
	 * only those messages (RFC 5182 §2.4, RFC 5267 §3.1). */
	free(v->saved);
	v->saved = xcalloc(n + 1, sizeof(*v->saved));
	for (size_t i = 0; i < n; i++) {
		if (is_ends_only && !((ret & RET_MIN) && i == 0) &&
		    !((ret & RET_MAX) && i + 1 == n))
			continue;
		v->saved[k++] = items[i].row->msg->uid;
	}
	for (size_t i = 1; i < k; i++) {
		uint32_t u = v->saved[i];
		size_t j = i;

		for (; j > 0 && v->saved[j - 1] > u; j--)
			v->saved[j] = v->saved[j - 1];
		v->saved[j] = u;
	}
	v->nsaved = k;
}

static void
saved_clear(struct imap_view *v)
{
	free(v->saved);
	v->saved = NULL;
	v->nsaved = 0;
}

void
imap_cmd_sort(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->nargs, pos = 0, ncrits = 0;
	struct crit crits[SORT_KEYS_MAX];
	struct imap_sort_rows r;
	struct item *items;
	unsigned ret = 0, what = 0;
	uint64_t modseq = 0;
	bool is_esort = false;
	struct imap_out o = { .s = s };

	if (v == NULL) {
		imap_done(s, "BAD", "Select a mailbox first");
		return;
	}
	/* RFC 5267 §3: SORT RETURN (options) (criteria) charset keys. */
	if (pos < nargs && is_imap_arg_atom(&args[pos], "RETURN")) {
		if (++pos >= nargs || return_parse(&args[pos], &ret) < 0) {
			imap_done(s, "BAD", "RETURN needs a list of result "
			    "options (MIN MAX COUNT ALL SAVE)");
			return;
		}
		pos++;
		is_esort = true;
	}
	if (pos >= nargs || crits_parse(&args[pos], crits, &ncrits,
	    &what) < 0) {
		imap_done(s, "BAD", "SORT needs a list of sort keys such as "
		    "(REVERSE DATE SUBJECT)");
		return;
	}
	pos++;
	if (pos >= nargs) {
		imap_done(s, "BAD", "SORT needs a charset");
		return;
	}
	if (!is_imap_sort_charset(&args[pos])) {
		if (ret & RET_SAVE)
			saved_clear(v);
		imap_done(s, "NO", BADCHARSET " Supported charsets are UTF-8 "
		    "and US-ASCII");
		return;
	}
	pos++;
	if (pos >= nargs) {
		imap_done(s, "BAD", "SORT needs search keys (ALL for every "
		    "message)");
		return;
	}
	if (imap_sort_rows_get(s, args + pos, nargs - pos, what, &r) < 0) {
		/* RFC 5182 §2.1: BAD leaves "$" alone, NO empties it. */
		if (r.is_no && (ret & RET_SAVE))
			saved_clear(v);
		imap_done(s, r.is_no ? "NO" : "BAD", "%s", r.error);
		return;
	}
	items = xcalloc(r.n + 1, sizeof(*items));
	for (size_t i = 0; i < r.n; i++) {
		items[i].row = &r.rows[i];
		for (size_t c = 0; c < ncrits; c++) {
			enum sort_key key = crits[c].key;

			if (key == SK_ARRIVAL || key == SK_DATE ||
			    key == SK_SIZE || items[i].str[key] != NULL)
				continue;
			items[i].str[key] = item_key(r.rows[i].msg, key);
		}
	}
	struct crits cr = { crits, ncrits };

	qsort_r(items, r.n, sizeof(*items), item_cmp, &cr);
	if (r.has_modseq)
		modseq = imap_sort_modseq(s, &r);
	if (!is_esort) {
		imap_out_printf(&o, "* SORT");
		for (size_t i = 0; i < r.n; i++)
			imap_out_printf(&o, " %" PRIu32, item_number(&items[i],
			    cmd->is_uid));
		/* RFC 7162 §3.1.5: not when nothing matched. */
		if (r.has_modseq && r.n > 0)
			imap_out_printf(&o, " (MODSEQ %" PRIu64 ")", modseq);
		imap_out_printf(&o, "\r\n");
		imap_out_flush(&o);
	} else if (ret & ~(unsigned)RET_SAVE) {
		/* RFC 5267 §3.1: MIN and MAX are the first and last in
		 * sort order; RFC 4731: left out when nothing matched. */
		imap_out_printf(&o, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
		    cmd->is_uid ? " UID" : "");
		if (r.n > 0 && (ret & RET_MIN))
			imap_out_printf(&o, " MIN %" PRIu32, item_number(
			    &items[0], cmd->is_uid));
		if (r.n > 0 && (ret & RET_MAX))
			imap_out_printf(&o, " MAX %" PRIu32, item_number(
			    &items[r.n - 1], cmd->is_uid));
		if (ret & RET_COUNT)
			imap_out_printf(&o, " COUNT %zu", r.n);
		if (r.n > 0 && (ret & RET_ALL)) {
			imap_out_printf(&o, " ALL ");
			write_all(&o, items, r.n, cmd->is_uid);
		}
		if (r.has_modseq && r.n > 0)
			imap_out_printf(&o, " MODSEQ %" PRIu64, modseq);
		imap_out_printf(&o, "\r\n");
		imap_out_flush(&o);
	}
	if (ret & RET_SAVE)
		save_result(v, items, r.n, ret);
	for (size_t i = 0; i < r.n; i++) {
		for (size_t k = 0; k <= SK_DISPLAYTO; k++)
			free(items[i].str[k]);
	}
	free(items);
	imap_sort_rows_deinit(&r);
	imap_done(s, "OK", "%s completed", cmd->is_uid ? "UID SORT" : "SORT");
}
