/*
 * imap_view: the selected mailbox as one session sees it. Sequence numbers
 * are positions in view->msgs; they change only when the session is told
 * (EXPUNGE, VANISHED, EXISTS), at the points RFC 9051 §7 allows. The
 * store's watch marks the view stale; imap_view_sync() asks the store what
 * changed since the modseq the view has caught up with and tells the
 * client. Everything runs on the session's thread.
 */
#include "imap/imap_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/net.h"

/* Items of one sequence set; more is a client error. */
#define SEQSET_ITEMS_MAX 10000

_Static_assert(STORE_FLAG_DRAFT <= UINT16_MAX / 2,
    "store flags fit struct imap_msg");
_Static_assert(sizeof(struct imap_msg) == 8,
    "every idle session keeps one struct imap_msg per message");

/* The first of n elements (size bytes each, ascending by the UID at
 * offset off) whose UID is at least uid. */
static size_t
uid_lower_bound(const void *base, size_t n, size_t size, size_t off,
    uint32_t uid)
{
	const unsigned char *p = base;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t at;

		memcpy(&at, p + mid * size + off, sizeof(at));
		if (at < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index into v->keywords of the first entry whose UID is at least uid. */
static size_t
keywords_lower_bound(const struct imap_view *v, uint32_t uid)
{
	return uid_lower_bound(v->keywords, v->nkeywords,
	    sizeof(*v->keywords), offsetof(struct imap_msg_keywords, uid), uid);
}

const char *
imap_view_keywords(const struct imap_view *v, size_t i)
{
	size_t at;

	if (!v->msgs[i].has_keywords)
		return NULL;
	at = keywords_lower_bound(v, v->msgs[i].uid);
	return at < v->nkeywords && v->keywords[at].uid == v->msgs[i].uid ?
	    v->keywords[at].list : NULL;
}

/* Notes the keywords of list (space-separated) the view has not held
 * before, for the next FLAGS response. */
static void
keywords_learn(struct imap_view *v, const char *list)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		size_t len = strcspn(p, " ");
		bool is_known = false;

		for (size_t k = 0; k < v->nknown && !is_known; k++)
			is_known = strlen(v->known[k]) == len &&
			    strncasecmp(v->known[k], p, len) == 0;
		if (!is_known && len > 0) {
			if (v->nknown == v->known_cap) {
				v->known_cap = v->known_cap ?
				    v->known_cap * 2 : 8;
				v->known = xrealloc(v->known,
				    v->known_cap * sizeof(*v->known));
			}
			v->known[v->nknown++] = xstrndup(p, len);
			v->is_flags_pending = true;
		}
		p += len;
		p += strspn(p, " ");
	}
}

void
imap_view_flags_write(struct imap_session *s)
{
	struct imap_view *v = s->view;

	imap_printf(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft");
	/* RFC 3501 §7.2.6: at least the system flags, \Recent among them
	 * (§2.3.2); RFC 9051 has no \Recent. It is never permanent. */
	if (!s->is_rev2)
		imap_printf(s, " \\Recent");
	for (size_t k = 0; k < v->nknown; k++)
		imap_printf(s, " %s", v->known[k]);
	imap_printf(s, ")\r\n");
	if (v->is_readonly) {
		imap_printf(s, "* OK [PERMANENTFLAGS ()] Read-only "
		    "mailbox\r\n");
	} else {
		imap_printf(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged "
		    "\\Deleted \\Seen \\Draft");
		for (size_t k = 0; k < v->nknown; k++)
			imap_printf(s, " %s", v->known[k]);
		imap_printf(s, " \\*)] Flags permitted\r\n");
	}
	v->is_flags_pending = false;
}

void
imap_view_flags_announce(struct imap_session *s)
{
	if (s->view != NULL && s->view->is_flags_pending)
		imap_view_flags_write(s);
}

/* Sets the keywords of view->msgs[i]; keywords may be the list it
 * replaces. */
static void
keywords_set(struct imap_view *v, size_t i, const char *keywords)
{
	struct imap_msg *m = &v->msgs[i];
	bool is_empty = keywords == NULL || *keywords == '\0';
	size_t at;
	bool has;

	if (is_empty && !m->has_keywords)
		return;
	if (!is_empty)
		keywords_learn(v, keywords);
	at = keywords_lower_bound(v, m->uid);
	has = at < v->nkeywords && v->keywords[at].uid == m->uid;
	if (!is_empty) {
		char *copy = xstrdup(keywords);

		if (has) {
			free(v->keywords[at].list);
			v->keywords[at].list = copy;
			return;
		}
		if (v->nkeywords == v->keywords_cap) {
			v->keywords_cap = v->keywords_cap ?
			    v->keywords_cap * 2 : 8;
			v->keywords = xrealloc(v->keywords,
			    v->keywords_cap * sizeof(*v->keywords));
		}
		memmove(&v->keywords[at + 1], &v->keywords[at],
		    (v->nkeywords - at) * sizeof(*v->keywords));
		v->keywords[at].uid = m->uid;
		v->keywords[at].list = copy;
		v->nkeywords++;
		m->has_keywords = true;
		return;
	}
	if (has) {
		free(v->keywords[at].list);
		memmove(&v->keywords[at], &v->keywords[at + 1],
		    (v->nkeywords - at - 1) * sizeof(*v->keywords));
		v->nkeywords--;
	}
	m->has_keywords = false;
}

/* Room for cap messages (and their MODSEQs when kept). */
static void
view_reserve(struct imap_view *v, size_t cap)
{
	if (cap <= v->cap)
		return;
	v->cap = cap;
	v->msgs = xrealloc(v->msgs, v->cap * sizeof(*v->msgs));
	if (v->modseqs != NULL)
		v->modseqs = xrealloc(v->modseqs,
		    v->cap * sizeof(*v->modseqs));
}

static void
view_push(struct imap_view *v, const struct store_msg *sm)
{
	struct imap_msg *m;

	/* An eighth more, not twice: one new message in a mailbox would
	 * otherwise double the array of every session idling on it. */
	if (v->n == v->cap)
		view_reserve(v, v->cap + v->cap / 8 + 16);
	m = &v->msgs[v->n++];
	memset(m, 0, sizeof(*m));
	m->uid = sm->uid;
	m->flags = (uint16_t)sm->flags;
	if (v->modseqs != NULL)
		v->modseqs[v->n - 1] = sm->modseq;
	keywords_set(v, v->n - 1, sm->keywords);
	if (sm->uid >= v->uidnext)
		v->uidnext = sm->uid + 1;
}

/* The MODSEQs of the view's messages from the store, the first time a
 * session needs them (it uses CONDSTORE now). A message changed since the
 * view caught up (store MODSEQ above v->modseq) is one whose change the
 * session has not heard of: it gets v->modseq, which is as far as the
 * session knows it, and the next sync reports it with its new MODSEQ. */
static void
modseqs_load(struct imap_session *s)
{
	struct imap_view *v = s->view;
	struct store_msg *list = NULL;
	size_t nlist = 0, at = 0;
	enum store_err err;

	v->modseqs = xcalloc(v->cap ? v->cap : 1, sizeof(*v->modseqs));
	if (v->n == 0)
		return;
	if (store_msg_list(s->ctx->store, v->mailbox, v->msgs[0].uid,
	    v->msgs[v->n - 1].uid, &list, &nlist, &err) < 0) {
		log_warn(s->sid, "imap.modseq_failed error=\"%s\"",
		    store_err_text(err));
		list = NULL;
		nlist = 0;
	}
	for (size_t i = 0; i < v->n; i++) {
		while (at < nlist && list[at].uid < v->msgs[i].uid)
			at++;
		v->modseqs[i] = at < nlist && list[at].uid == v->msgs[i].uid &&
		    list[at].modseq <= v->modseq ? list[at].modseq : v->modseq;
	}
	store_msg_list_free(&list, nlist);
}

uint64_t
imap_view_modseq(struct imap_session *s, size_t i)
{
	if (s->view->modseqs == NULL)
		modseqs_load(s);
	return s->view->modseqs[i];
}

uint32_t
imap_view_flags(const struct imap_session *s, size_t i)
{
	const struct imap_msg *m = &s->view->msgs[i];

	return m->flags | (m->is_recent && !s->is_rev2 ? IMAP_FLAG_RECENT :
	    0);
}

/* RFC 3501 §2.3.2: marks the messages from index from on that are recent
 * for this IMAP4rev1 session. The owner's read-write session claims what
 * no session has (store_recent_claim), so that no other session sees them
 * recent; a read-only one (EXAMINE) only looks: RFC 3501 §6.3.2 forbids
 * EXAMINE to take \Recent away; so does another user's session
 * (is_recent_claimer). IMAP4rev2 has no \Recent (RFC 9051 Appendix E) and
 * takes nothing from IMAP4rev1 sessions. */
static int
recent_mark(struct imap_session *s, size_t from, enum store_err *err_out)
{
	struct imap_view *v = s->view;
	uint32_t first;
	int rc;

	if (s->is_rev2 || from >= v->n)
		return 0;
	if (!v->is_recent_claimer)
		rc = store_recent_peek(s->ctx->store, v->mailbox,
		    v->uidvalidity, &first, err_out);
	else
		rc = store_recent_claim(s->ctx->store, v->mailbox,
		    v->uidvalidity, v->uidnext, &first, err_out);
	if (rc < 0)
		return -1;
	for (size_t i = from; i < v->n; i++) {
		if (v->msgs[i].uid >= first && !v->msgs[i].is_recent) {
			v->msgs[i].is_recent = true;
			v->nrecent++;
		}
	}
	return 0;
}

static void
on_mailbox_changed(void *arg)
{
	struct imap_session *s = arg;
	bool may_expunge;

	if (s->view == NULL || is_net_conn_closing(s->conn))
		return;
	s->view->is_stale = true;
	/* A client that idles and does not read must not make us queue
	 * FETCH lines without bound (another of its sessions may change
	 * flags in a loop): the view stays stale, and once the output has
	 * drained one sync sends what changed meanwhile, merged
	 * (imap_view_drained). */
	if (net_conn_pending(s->conn) >= IMAP_VIEW_OUTPUT_MAX)
		return;
	/* RFC 2177: an idling client hears of changes at once; so does
	 * one that asked NOTIFY for them (RFC 5465 §4, §6.1). */
	if (imap_notify_selected_now(s, &may_expunge))
		imap_view_sync(s, may_expunge, false);
}

void
imap_view_drained(struct imap_session *s)
{
	bool may_expunge;

	if (s->view == NULL || !s->view->is_stale ||
	    is_net_conn_closing(s->conn))
		return;
	if (imap_notify_selected_now(s, &may_expunge))
		imap_view_sync(s, may_expunge, false);
}

int
imap_view_open(struct imap_session *s, const char *name, bool is_readonly,
    enum store_err *err_out)
{
	struct imap_box b;
	struct store_mailbox mb;
	struct store_msg *list = NULL;
	size_t n = 0;
	struct imap_view *v;
	int rc;

	imap_view_close(s);
	/* RFC 4314 §4: SELECT and EXAMINE need "r". */
	rc = imap_box_get(s, name, STORE_ACL_READ, &b, err_out);
	if (rc != IMAP_BOX_OK) {
		imap_box_deinit(&b);
		return rc;
	}
	mb = b.mb;
	memset(&b.mb, 0, sizeof(b.mb));
	if (store_msg_list(s->ctx->store, mb.id, 1, UINT32_MAX, &list, &n,
	    err_out) < 0) {
		store_mailbox_deinit(&mb);
		imap_box_deinit(&b);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	v->mailbox = mb.id;
	v->name = xstrdup(mb.name);
	v->owner = b.owner;
	v->rights = b.rights;
	/* Read-only without a right that changes the mailbox's messages
	 * (RFC 4314 §4 leaves SELECT to "r"; nothing could be changed). */
	v->is_readonly = is_readonly || !(b.rights & (STORE_ACL_SEEN |
	    STORE_ACL_WRITE | STORE_ACL_DELETED | STORE_ACL_EXPUNGE));
	/* Another user's mailbox is looked at, never claimed from: a user
	 * the owner lets set \Seen (a delegate, an assistant) and who keeps
	 * an IMAP4rev1 session on the owner's INBOX took every \Recent,
	 * so the owner's client never heard RECENT of new mail. */
	v->is_recent_claimer = !v->is_readonly && b.owner == s->id.account;
	imap_box_deinit(&b);
	v->uidvalidity = mb.uidvalidity;
	v->uidnext = mb.uidnext;
	/* The list was read after the mailbox: whatever changed in between
	 * is asked for again at the first sync, which is idempotent. */
	v->modseq = mb.highestmodseq;
	v->is_stale = true;
	/* Exactly the room the mailbox needs (view_push grows it). A
	 * session that uses CONDSTORE already keeps the MODSEQs at once. */
	if (s->is_condstore)
		v->modseqs = xcalloc(n ? n : 1, sizeof(*v->modseqs));
	view_reserve(v, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		view_push(v, &list[i]);
	store_msg_list_free(&list, n);
	store_mailbox_deinit(&mb);
	v->watch = store_watch_new(s->ctx->store, v->mailbox, s->base,
	    on_mailbox_changed, s);
	s->view = v;
	if (recent_mark(s, 0, err_out) < 0) {
		imap_view_close(s);
		return -1;
	}
	return 0;
}

void
imap_view_close(struct imap_session *s)
{
	struct imap_view *v = s->view;

	if (v == NULL)
		return;
	store_watch_free(&v->watch);
	for (size_t i = 0; i < v->nkeywords; i++)
		free(v->keywords[i].list);
	free(v->keywords);
	for (size_t k = 0; k < v->nknown; k++)
		free(v->known[k]);
	free(v->known);
	free(v->msgs);
	free(v->modseqs);
	free(v->saved);
	free(v->name);
	free(v);
	s->view = NULL;
}

/* First index whose UID is at least uid. */
static size_t
view_lower_bound(const struct imap_view *v, uint32_t uid)
{
	return uid_lower_bound(v->msgs, v->n, sizeof(*v->msgs),
	    offsetof(struct imap_msg, uid), uid);
}

size_t
imap_view_find(const struct imap_view *v, uint32_t uid)
{
	size_t at = view_lower_bound(v, uid);

	return at < v->n && v->msgs[at].uid == uid ? at : SIZE_MAX;
}

void
imap_view_update(struct imap_view *v, size_t i, uint32_t flags,
    const char *keywords, uint64_t modseq)
{
	struct imap_msg *m = &v->msgs[i];

	m->flags = (uint16_t)flags;
	keywords_set(v, i, keywords);
	if (v->modseqs != NULL && modseq > v->modseqs[i])
		v->modseqs[i] = modseq;
}

static bool
is_same_keywords(const char *a, const char *b)
{
	if (a == NULL || *a == '\0')
		return b == NULL || *b == '\0';
	return b != NULL && strcmp(a, b) == 0;
}

static void
write_flags_update(struct imap_session *s, size_t i)
{
	const struct imap_msg *m = &s->view->msgs[i];

	imap_view_flags_announce(s);
	/* RFC 9586 §3.3: UIDFETCH, by UID, under UIDONLY. */
	if (s->is_uidonly)
		imap_printf(s, "* UIDFETCH %u (FLAGS ", m->uid);
	else
		imap_printf(s, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
	imap_write_flags(s, imap_view_flags(s, i),
	    imap_view_keywords(s->view, i));
	if (s->is_condstore)
		imap_printf(s, " MODSEQ (%llu)",
		    (unsigned long long)imap_view_modseq(s, i));
	imap_printf(s, ")\r\n");
}

/* Writes uids (ascending) as a compact sequence set. */
static void
write_uid_set(struct imap_session *s, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j == i)
			imap_printf(s, "%s%u", i ? "," : "", uids[i]);
		else
			imap_printf(s, "%s%u:%u", i ? "," : "", uids[i],
			    uids[j]);
		i = j + 1;
	}
}

/* Removes the messages marked is_expunged and tells the client: EXPUNGE
 * from the highest number down, so that each number is right when it is
 * read, or one VANISHED under QRESYNC (RFC 7162 §3.2.10). */
static void
announce_expunges(struct imap_session *s)
{
	struct imap_view *v = s->view;
	uint32_t *gone = NULL;
	size_t ngone = 0, o = 0;

	for (size_t i = v->n; i-- > 0;) {
		if (!v->msgs[i].is_expunged)
			continue;
		if (!s->is_qresync && !s->is_uidonly)
			imap_printf(s, "* %zu EXPUNGE\r\n", i + 1);
		ngone++;
	}
	if (ngone == 0)
		return;
	gone = xcalloc(ngone, sizeof(*gone));
	ngone = 0;
	for (size_t i = 0; i < v->n; i++) {
		if (v->msgs[i].is_expunged) {
			gone[ngone++] = v->msgs[i].uid;
			keywords_set(v, i, NULL);
			if (v->msgs[i].is_recent)
				v->nrecent--;
			continue;
		}
		if (v->modseqs != NULL)
			v->modseqs[o] = v->modseqs[i];
		v->msgs[o++] = v->msgs[i];
	}
	v->n = o;
	/* RFC 9586 §3.2: UIDONLY too hears VANISHED. */
	if (s->is_qresync || s->is_uidonly) {
		imap_printf(s, "* VANISHED ");
		write_uid_set(s, gone, ngone);
		imap_printf(s, "\r\n");
	}
	free(gone);
}

static bool
has_pending_expunges(const struct imap_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->msgs[i].is_expunged)
			return true;
	}
	return false;
}

void
imap_view_sync(struct imap_session *s, bool may_expunge, bool is_forced)
{
	struct imap_view *v = s->view;
	struct store_msg *changed = NULL;
	uint32_t *expunged = NULL;
	size_t nchanged = 0, nexpunged = 0, before, nadded = 0;
	uint64_t highest = 0;
	enum store_err err;

	if (v == NULL)
		return;
	/* Another user's mailbox: nothing more once "r" is withdrawn
	 * (the next command closes the view). */
	if (v->owner != s->id.account && (v->is_stale || is_forced) &&
	    !imap_acl_view_check(s))
		return;
	if (!v->is_stale && !is_forced) {
		if (may_expunge && has_pending_expunges(v))
			announce_expunges(s);
		imap_view_flags_announce(s);
		return;
	}
	v->is_stale = false;
	/* Before anything is added: the MODSEQs read now are the ones the
	 * session knew. */
	if (s->is_condstore && v->modseqs == NULL)
		modseqs_load(s);
	if (store_msg_changes(s->ctx->store, v->mailbox, v->modseq, &changed,
	    &nchanged, &expunged, &nexpunged, &highest, &err) < 0) {
		if (err == STORE_NOT_FOUND) {
			/* RFC 9051 §7.1: the mailbox was deleted or renamed
			 * under us; the session cannot go on with it. */
			imap_printf(s, "* BYE [UNAVAILABLE] The selected "
			    "mailbox was deleted\r\n");
			net_conn_close(s->conn);
			return;
		}
		log_error(s->sid, "imap.sync_failed error=\"%s\"",
		    store_err_text(err));
		v->is_stale = true;
		return;
	}
	before = v->n;
	for (size_t i = 0; i < nexpunged; i++) {
		size_t at = imap_view_find(v, expunged[i]);

		if (at != SIZE_MAX)
			v->msgs[at].is_expunged = true;
	}
	for (size_t i = 0; i < nchanged; i++) {
		const struct store_msg *sm = &changed[i];
		size_t at = imap_view_find(v, sm->uid);

		if (at == SIZE_MAX) {
			/* New, unless it is one we already dropped. */
			if (sm->uid >= v->uidnext) {
				view_push(v, sm);
				nadded++;
			}
			continue;
		}
		const struct imap_msg *m = &v->msgs[at];

		if (m->is_expunged)
			continue;
		if (m->flags == sm->flags &&
		    is_same_keywords(imap_view_keywords(v, at), sm->keywords) &&
		    (!s->is_condstore ||
		    imap_view_modseq(s, at) >= sm->modseq))
			continue;
		imap_view_update(v, at, sm->flags, sm->keywords, sm->modseq);
		/* New messages are announced by EXISTS, not FETCH. */
		if (at < before)
			write_flags_update(s, at);
	}
	if (highest > v->modseq)
		v->modseq = highest;
	store_msg_list_free(&changed, nchanged);
	free(expunged);
	/* RFC 3501 §2.3.2: new mail is recent for the first session that
	 * hears of it. A failure only costs the flag: the messages stay
	 * unclaimed for the next session. */
	if (nadded > 0 && recent_mark(s, before, &err) < 0)
		log_warn(s->sid, "imap.recent_failed error=\"%s\"",
		    store_err_text(err));
	if (may_expunge)
		announce_expunges(s);
	/* New messages may bring keywords: the client hears of them before
	 * it can fetch them. */
	imap_view_flags_announce(s);
	if (nadded > 0) {
		imap_printf(s, "* %zu EXISTS\r\n", v->n);
		/* RFC 3501 §7.3.2: RECENT comes with a new size. */
		if (!s->is_rev2)
			imap_printf(s, "* %zu RECENT\r\n", v->nrecent);
		imap_notify_messages_new(s, v->n - nadded);
	}
}

static int
view_set(struct imap_session *s, const struct imap_arg *a, bool is_uid,
    bool is_clamped, size_t **idx_out, size_t *n_out)
{
	struct imap_view *v = s->view;
	struct imap_seqset set;
	size_t *idx, n = 0;

	*idx_out = NULL;
	*n_out = 0;
	if (a->kind != IMAP_ARG_ATOM || imap_seqset_parse(a->str,
	    SEQSET_ITEMS_MAX, &set) < 0)
		return -1;
	idx = xcalloc(v->n ? v->n : 1, sizeof(*idx));
	if (set.is_saved) {
		/* RFC 5182: "$" holds UIDs whichever form uses it. */
		for (size_t i = 0; i < v->nsaved; i++) {
			size_t at = imap_view_find(v, v->saved[i]);

			if (at != SIZE_MAX)
				idx[n++] = at;
		}
		imap_seqset_deinit(&set);
		*idx_out = idx;
		*n_out = n;
		return 0;
	}
	if (is_uid) {
		imap_seqset_resolve(&set, v->n ? v->msgs[v->n - 1].uid : 0);
		for (size_t r = 0; r < set.n; r++) {
			for (size_t i = view_lower_bound(v,
			    set.ranges[r].first);
			    i < v->n && v->msgs[i].uid <= set.ranges[r].last;
			    i++)
				idx[n++] = i;
		}
	} else {
		imap_seqset_resolve(&set, (uint32_t)v->n);
		for (size_t r = 0; r < set.n; r++) {
			if (is_clamped) {
				uint32_t first = set.ranges[r].first;
				uint32_t last = set.ranges[r].last;

				if (first == 0)
					first = 1;	/* "*", no message */
				if (last > v->n)
					last = (uint32_t)v->n;
				for (uint32_t q = first; q <= last && q > 0;
				    q++)
					idx[n++] = q - 1;
				continue;
			}
			if (set.ranges[r].first == 0 ||
			    set.ranges[r].last > v->n) {
				imap_seqset_deinit(&set);
				free(idx);
				return -2;
			}
			for (uint32_t q = set.ranges[r].first;
			    q <= set.ranges[r].last; q++)
				idx[n++] = q - 1;
		}
	}
	imap_seqset_deinit(&set);
	*idx_out = idx;
	*n_out = n;
	return 0;
}

int
imap_view_set(struct imap_session *s, const struct imap_arg *a, bool is_uid,
    size_t **idx_out, size_t *n_out)
{
	return view_set(s, a, is_uid, false, idx_out, n_out);
}

int
imap_view_set_clamped(struct imap_session *s, const struct imap_arg *a,
    bool is_uid, size_t **idx_out, size_t *n_out)
{
	return view_set(s, a, is_uid, true, idx_out, n_out);
}
