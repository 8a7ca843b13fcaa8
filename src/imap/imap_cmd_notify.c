/*
 * imap_cmd_notify: the NOTIFY command (RFC 5465) and the notifications it
 * asks for.
 *
 * A session with NOTIFY SET holds one store account watch for its whole
 * account, never one per mailbox: the store hands it what each commit did
 * (new, expunged or changed messages by mailbox id; mailboxes created,
 * renamed, deleted; names subscribed), and the session filters by the
 * event groups. The selected mailbox keeps its own watch (imap_view.c),
 * which sends EXISTS, EXPUNGE and FETCH; this file decides when it may
 * (RFC 5465 §4, §6.1) and adds the FETCH items a MessageNew asked for.
 *
 * Notifications go out whenever the session may send untagged data (RFC
 * 5465 §1, §4): during IDLE, between commands, and before the tagged
 * reply of each command (imap_done). Runs on the session's worker thread.
 */
#include "imap/imap_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/net.h"

/* Output queued for the client beyond which notifications stop (RFC 5465
 * §5.8): a client that does not read must not make us hold its news. */
#define NOTIFY_OUTPUT_MAX (16 * NET_DRAIN_LOW)

struct imap_notify {
	struct imap_notify_spec spec;
	uint64_t origin;	/* store_origin_set() of this session */
	struct store_account_watch *watch;	/* NULL for NOTIFY NONE */
	bool is_pending;	/* the watch has events for us */
	unsigned status_new;	/* STATUS items for new or expunged */
	unsigned status_flags;	/* STATUS items for flag changes */
};

/* ---- Filters ----------------------------------------------------------- */

static const struct imap_notify_group *
selected_group(const struct imap_notify *n)
{
	for (size_t i = 0; i < n->spec.ngroups; i++) {
		const struct imap_notify_group *g = &n->spec.groups[i];

		if (g->filter == IMAP_NOTIFY_SELECTED ||
		    g->filter == IMAP_NOTIFY_SELECTED_DELAYED)
			return g;
	}
	return NULL;
}

static bool
is_in_subtree(const char *name, const char *root)
{
	size_t len = strlen(root);

	return strncmp(name, root, len) == 0 &&
	    (name[len] == '\0' || name[len] == '/');
}

/* What flush() and status_all() share: the session. A flush reads only
 * the mailboxes and subscriptions its events name (one row each), never
 * the account's whole list: with 3,000 mailboxes, 10 sessions under
 * NOTIFY read 30,000 rows for each flag change another session made
 * (200 STOREs cost the server 7.4 s of CPU instead of 0.14 s). */
struct flush_ctx {
	struct imap_session *s;
};

/* Whether name is subscribed: sub when the caller knows it (0 or 1),
 * else (-1) one lookup. */
static bool
is_subscribed(struct flush_ctx *f, const char *name, int sub)
{
	enum store_err err;
	int rc;

	if (sub >= 0)
		return sub != 0;
	rc = store_subscription_has(f->s->ctx->store, f->s->id.account, name,
	    &err);
	if (rc < 0)
		log_error(f->s->sid, "imap.notify_subscriptions "
		    "error=\"%s\"", store_err_text(err));
	return rc > 0;
}

/* The events of the first group other than SELECTED that covers name
 * (RFC 5465 §6.2 to §6.6), or 0; sub as for is_subscribed(). */
static unsigned
events_for(struct flush_ctx *f, const struct imap_notify *n,
    const char *name, int sub)
{
	for (size_t i = 0; i < n->spec.ngroups; i++) {
		const struct imap_notify_group *g = &n->spec.groups[i];
		bool is_match = false;

		switch (g->filter) {
		case IMAP_NOTIFY_SELECTED:
		case IMAP_NOTIFY_SELECTED_DELAYED:
			continue;
		case IMAP_NOTIFY_INBOXES:
			/* §6.3: where new mail lands; postern delivers only
			 * to INBOX. */
			is_match = strcmp(name, "INBOX") == 0;
			break;
		case IMAP_NOTIFY_PERSONAL:
			is_match = true;
			break;
		case IMAP_NOTIFY_SUBSCRIBED:
			is_match = f != NULL && is_subscribed(f, name, sub);
			break;
		case IMAP_NOTIFY_SUBTREE:
			for (size_t k = 0; k < g->nnames && !is_match; k++)
				is_match = is_in_subtree(name, g->names[k]);
			break;
		case IMAP_NOTIFY_MAILBOXES:
			/* §6.6: the names themselves, no wildcards. */
			for (size_t k = 0; k < g->nnames && !is_match; k++)
				is_match = strcmp(name, g->names[k]) == 0;
			break;
		}
		if (is_match)
			return g->events;
	}
	return 0;
}

static bool
is_selected_box(const struct imap_session *s, int64_t id)
{
	return s->view != NULL && s->state == IMAP_STATE_SELECTED &&
	    s->view->mailbox == id;
}

/* ---- Writing ------------------------------------------------------------ */

/* STATUS items from their names (imap_cmd_mailbox.c keeps the bits). */
static unsigned
status_bits(const char *const *items, size_t n)
{
	struct imap_arg atoms[8], list;

	for (size_t i = 0; i < n; i++) {
		atoms[i].kind = IMAP_ARG_ATOM;
		atoms[i].str = (char *)items[i];
		atoms[i].len = strlen(items[i]);
		atoms[i].list = NULL;
	}
	list.kind = IMAP_ARG_LIST;
	list.len = n;
	list.str = NULL;
	list.list = atoms;
	return imap_status_items_parse(&list);
}

/* An unsolicited STATUS must not turn CONDSTORE on for the session the
 * way a client's STATUS (HIGHESTMODSEQ) does (RFC 7162 §3.1). */
static void
status_write(struct imap_session *s, const struct store_mailbox *mb,
    unsigned bits)
{
	bool was_condstore = s->is_condstore;

	imap_status_write(s, mb, bits);
	s->is_condstore = was_condstore;
}

/* RFC 5465 §5.4 and §5.5: an extended LIST (RFC 5258) for name, with
 * \NonExistent when it is gone and \Subscribed when it is subscribed. */
static void
list_write(struct flush_ctx *f, const char *name, const char *old_name)
{
	struct imap_session *s = f->s;
	struct store_mailbox mb;
	enum store_err err;
	bool is_found = store_mailbox_get(s->ctx->store, s->id.account, name,
	    &mb, &err) == 0;
	bool is_sub = is_subscribed(f, name, is_found ? mb.is_subscribed : -1);

	imap_printf(s, "* LIST (");
	if (!is_found) {
		imap_printf(s, "\\NonExistent");
	} else {
		const char *special = store_special_name(mb.special);

		imap_printf(s, "%s", mb.has_children ? "\\HasChildren" :
		    "\\HasNoChildren");
		if (special != NULL)
			imap_printf(s, " %s", special);
		store_mailbox_deinit(&mb);
	}
	if (is_sub)
		imap_printf(s, " \\Subscribed");
	imap_printf(s, ") \"/\" ");
	imap_write_mailbox(s, name);
	if (old_name != NULL) {
		imap_printf(s, " (\"OLDNAME\" (");
		imap_write_mailbox(s, old_name);
		imap_printf(s, "))");
	}
	imap_printf(s, "\r\n");
}

static void
event_write(struct flush_ctx *f, struct imap_notify *n,
    const struct store_event *e)
{
	struct imap_session *s = f->s;

	/* RFC 5465 §5: not what this session did itself. */
	if (e->origin != 0 && e->origin == n->origin)
		return;
	if (e->kind & STORE_EVENT_MESSAGE) {
		struct store_mailbox mb;
		enum store_err err;
		unsigned want;

		/* The selected mailbox is told through its view, and only
		 * under SELECTED (RFC 5465 §3.1). */
		if (is_selected_box(s, e->mailbox) ||
		    store_mailbox_get_id(s->ctx->store, s->id.account,
		    e->mailbox, &mb, &err) < 0)
			return;
		want = events_for(f, n, mb.name, mb.is_subscribed);
		/* §5.2, §5.3: STATUS with UIDNEXT and MESSAGES; §5.1: a
		 * flag change with UIDVALIDITY and HIGHESTMODSEQ. */
		if ((e->kind & (STORE_EVENT_NEW | STORE_EVENT_EXPUNGE)) &&
		    (want & IMAP_NOTIFY_MESSAGE_NEW))
			status_write(s, &mb, n->status_new |
			    ((e->kind & STORE_EVENT_FLAGS) &&
			    (want & IMAP_NOTIFY_FLAG_CHANGE) ?
			    n->status_flags : 0));
		else if ((e->kind & STORE_EVENT_FLAGS) &&
		    (want & IMAP_NOTIFY_FLAG_CHANGE))
			status_write(s, &mb, n->status_flags);
		store_mailbox_deinit(&mb);
		return;
	}
	if (e->kind & (STORE_EVENT_CREATE | STORE_EVENT_DELETE |
	    STORE_EVENT_RENAME)) {
		if (!(events_for(f, n, e->name, -1) &
		    IMAP_NOTIFY_MAILBOX_NAME) && (e->old_name == NULL ||
		    !(events_for(f, n, e->old_name, -1) &
		    IMAP_NOTIFY_MAILBOX_NAME)))
			return;
		list_write(f, e->name, e->old_name);
		return;
	}
	if (e->kind & (STORE_EVENT_SUBSCRIBE | STORE_EVENT_UNSUBSCRIBE)) {
		if (events_for(f, n, e->name, -1) &
		    IMAP_NOTIFY_SUBSCRIPTION_CHANGE)
			list_write(f, e->name, NULL);
	}
}

static void
notify_free(struct imap_notify **np)
{
	struct imap_notify *n = *np;

	if (n == NULL)
		return;
	*np = NULL;
	store_account_watch_free(&n->watch);
	imap_notify_spec_deinit(&n->spec);
	free(n);
}

void
imap_notify_end(struct imap_session *s)
{
	notify_free(&s->notify);
}

uint64_t
imap_notify_origin(const struct imap_session *s)
{
	return s->notify != NULL ? s->notify->origin : 0;
}

/* RFC 5465 §5.8: say so and behave as after NOTIFY NONE. */
static void
overflow(struct imap_session *s, struct imap_notify *n)
{
	imap_printf(s, "* OK [NOTIFICATIONOVERFLOW] Too many changes at "
	    "once; notifications are off\r\n");
	n->spec.is_none = true;
	n->is_pending = false;
	store_account_watch_free(&n->watch);
}

void
imap_notify_flush(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct flush_ctx f = { .s = s };
	struct store_event *events = NULL;
	size_t nevents = 0;

	if (n == NULL || !n->is_pending || is_net_conn_closing(s->conn))
		return;
	n->is_pending = false;
	if (net_conn_pending(s->conn) > NOTIFY_OUTPUT_MAX ||
	    !store_account_watch_take(n->watch, &events, &nevents)) {
		store_events_free(&events, nevents);
		overflow(s, n);
		return;
	}
	for (size_t i = 0; i < nevents; i++)
		event_write(&f, n, &events[i]);
	store_events_free(&events, nevents);
}

static void
on_account_changed(void *arg)
{
	struct imap_session *s = arg;

	if (s->notify == NULL || is_net_conn_closing(s->conn))
		return;
	s->notify->is_pending = true;
	/* RFC 5465 §1, §4: the client listens all the time, so anything
	 * but the middle of a command will do. */
	if (s->is_idle || s->cmd == NULL)
		imap_notify_flush(s);
}

/* ---- The selected mailbox ----------------------------------------------- */

bool
imap_notify_selected_now(struct imap_session *s, bool *may_expunge_out)
{
	const struct imap_notify_group *g;

	*may_expunge_out = true;
	if (s->notify == NULL)
		return s->is_idle;	/* RFC 2177 alone */
	/* RFC 5465 §3.1: without SELECTED, no message events for the
	 * selected mailbox; §4: IDLE sends what NOTIFY asked, no more. */
	g = s->notify->spec.is_none ? NULL : selected_group(s->notify);
	if (g == NULL || g->events == 0)
		return false;
	/* §6.1.2: SELECTED-DELAYED keeps expunges for a command that may
	 * hear them (NOOP, IDLE...). */
	*may_expunge_out = g->filter == IMAP_NOTIFY_SELECTED || s->is_idle;
	return s->is_idle || s->cmd == NULL;
}

void
imap_notify_messages_new(struct imap_session *s, size_t first)
{
	struct imap_view *v = s->view;
	const struct imap_notify_group *g;
	unsigned fetch;
	struct store_msg *list = NULL;
	size_t nlist = 0, at = 0;
	enum store_err err;

	if (s->notify == NULL || s->notify->spec.is_none || v == NULL ||
	    first >= v->n)
		return;
	g = selected_group(s->notify);
	fetch = s->notify->spec.fetch;
	if (g == NULL || !(g->events & IMAP_NOTIFY_MESSAGE_NEW) || fetch == 0)
		return;
	if ((fetch & (IMAP_NOTIFY_FETCH_INTERNALDATE |
	    IMAP_NOTIFY_FETCH_SIZE)) && store_msg_list(s->ctx->store,
	    v->mailbox, v->msgs[first].uid, v->msgs[v->n - 1].uid, &list,
	    &nlist, &err) < 0) {
		log_error(s->sid, "imap.notify_fetch error=\"%s\"",
		    store_err_text(err));
		return;
	}
	/* RFC 5465 §5.2: EXISTS (already sent), then one FETCH each. */
	for (size_t i = first; i < v->n; i++) {
		const struct imap_msg *m = &v->msgs[i];
		const char *sep = "";

		if (s->is_uidonly) {
			imap_printf(s, "* UIDFETCH %u (", m->uid);
		} else {
			imap_printf(s, "* %zu FETCH (UID %u", i + 1, m->uid);
			sep = " ";
		}
		if (fetch & IMAP_NOTIFY_FETCH_FLAGS) {
			imap_printf(s, "%sFLAGS ", sep);
			imap_write_flags(s, imap_view_flags(s, i),
			    imap_view_keywords(v, i));
			sep = " ";
		}
		if (fetch & IMAP_NOTIFY_FETCH_MODSEQ) {
			imap_printf(s, "%sMODSEQ (%llu)", sep,
			    (unsigned long long)imap_view_modseq(s, i));
			sep = " ";
		}
		while (at < nlist && list[at].uid < m->uid)
			at++;
		if (at < nlist && list[at].uid == m->uid) {
			if (fetch & IMAP_NOTIFY_FETCH_INTERNALDATE) {
				char date[IMAP_DATE_TIME_LEN];

				imap_date_time_format(list[at].internal_date,
				    date);
				imap_printf(s, "%sINTERNALDATE \"%s\"", sep,
				    date);
				sep = " ";
			}
			if (fetch & IMAP_NOTIFY_FETCH_SIZE) {
				imap_printf(s, "%sRFC822.SIZE %llu", sep,
				    (unsigned long long)list[at].size);
				sep = " ";
			}
		}
		if (*sep == '\0')
			imap_printf(s, "UID %u", m->uid);
		imap_printf(s, ")\r\n");
	}
	store_msg_list_free(&list, nlist);
}

/* ---- The command ------------------------------------------------------- */

static char *
name_decode(void *ctx, const struct imap_arg *a)
{
	return imap_mailbox_arg(ctx, a);
}

/* RFC 5465 §3.1: with STATUS, one STATUS for each mailbox other than the
 * selected one that a group asks message events of, before the OK. */
static void
status_all(struct imap_session *s, struct imap_notify *n)
{
	struct flush_ctx f = { .s = s };
	struct store_mailbox *boxes;
	size_t nboxes;
	enum store_err err;

	if (store_mailbox_list(s->ctx->store, s->id.account, &boxes,
	    &nboxes, &err) < 0) {
		log_error(s->sid, "imap.notify_list error=\"%s\"",
		    store_err_text(err));
		return;
	}
	for (size_t i = 0; i < nboxes; i++) {
		const struct store_mailbox *mb = &boxes[i];

		if (!is_selected_box(s, mb->id) &&
		    (events_for(&f, n, mb->name, mb->is_subscribed) &
		    IMAP_NOTIFY_MESSAGE_NEW))
			status_write(s, mb, n->status_new);
	}
	store_mailbox_list_free(&boxes, nboxes);
}

void
imap_cmd_notify(struct imap_session *s, const struct imap_cmd *cmd)
{
	static const char *const new_items[] = {
		"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
		"HIGHESTMODSEQ",
	};
	static const char *const flag_items[] = {
		"UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ",
	};
	static atomic_uint_fast64_t origins;
	struct imap_notify *n = xcalloc(1, sizeof(*n));
	const char *error;
	enum imap_notify_rc rc;

	rc = imap_notify_parse(cmd->args, cmd->nargs, name_decode, s,
	    &n->spec, &error);
	if (rc != IMAP_NOTIFY_OK) {
		notify_free(&n);
		imap_done(s, rc == IMAP_NOTIFY_BAD ? "BAD" : "NO", "%s",
		    error);
		return;
	}
	/* HIGHESTMODSEQ when the client uses MODSEQs (RFC 5465 §5.2). */
	n->status_new = status_bits(new_items, ARRAY_LEN(new_items) -
	    (s->is_condstore ? 0 : 1));
	n->status_flags = status_bits(flag_items, ARRAY_LEN(flag_items));
	n->origin = atomic_fetch_add(&origins, 1) + 1;
	/* NOTIFY SET replaces what was set; NOTIFY NONE keeps a spec that
	 * says no (IDLE then sends nothing either, §4). */
	notify_free(&s->notify);
	if (!n->spec.is_none) {
		n->watch = store_account_watch_new(s->ctx->store,
		    s->id.account, s->base, on_account_changed, s);
		if (n->spec.is_status)
			status_all(s, n);
	}
	s->notify = n;
	/* §3.1: NOTIFY SET is an implicit NOOP: imap_done() sends what
	 * the selected mailbox has pending. */
	if (s->view != NULL)
		s->view->is_stale = true;
	imap_done(s, "OK", "NOTIFY completed");
}
