/*
 * imap_notify_parse: the arguments of NOTIFY (RFC 5465 §3.1 and the
 * grammar of §8) as a struct imap_notify_spec. Reads the typed argument
 * tree of imap_parser.c; never allocates more than the tree holds names,
 * and those are bounded by IMAP_NOTIFY_NAMES_MAX.
 */
#include "imap/imap_notify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const struct {
	const char *name;
	enum imap_notify_filter filter;
	bool has_names;
} filters[] = {
	{ "SELECTED", IMAP_NOTIFY_SELECTED, false },
	{ "SELECTED-DELAYED", IMAP_NOTIFY_SELECTED_DELAYED, false },
	{ "INBOXES", IMAP_NOTIFY_INBOXES, false },
	{ "PERSONAL", IMAP_NOTIFY_PERSONAL, false },
	{ "SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED, false },
	{ "SUBTREE", IMAP_NOTIFY_SUBTREE, true },
	{ "MAILBOXES", IMAP_NOTIFY_MAILBOXES, true },
};

static const struct {
	const char *name;
	enum imap_notify_event event;
} events[] = {
	{ "MessageNew", IMAP_NOTIFY_MESSAGE_NEW },
	{ "MessageExpunge", IMAP_NOTIFY_MESSAGE_EXPUNGE },
	{ "FlagChange", IMAP_NOTIFY_FLAG_CHANGE },
	{ "AnnotationChange", IMAP_NOTIFY_ANNOTATION_CHANGE },
	{ "MailboxName", IMAP_NOTIFY_MAILBOX_NAME },
	{ "SubscriptionChange", IMAP_NOTIFY_SUBSCRIPTION_CHANGE },
	{ "MailboxMetadataChange", IMAP_NOTIFY_MAILBOX_METADATA_CHANGE },
	{ "ServerMetadataChange", IMAP_NOTIFY_SERVER_METADATA_CHANGE },
};

static const struct {
	const char *name;
	enum imap_notify_fetch bit;
} fetch_items[] = {
	{ "UID", IMAP_NOTIFY_FETCH_UID },
	{ "FLAGS", IMAP_NOTIFY_FETCH_FLAGS },
	{ "MODSEQ", IMAP_NOTIFY_FETCH_MODSEQ },
	{ "INTERNALDATE", IMAP_NOTIFY_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_NOTIFY_FETCH_SIZE },
};

#define MESSAGE_EVENTS (IMAP_NOTIFY_MESSAGE_NEW | \
	IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE | \
	IMAP_NOTIFY_ANNOTATION_CHANGE)

struct parse {
	struct imap_notify_spec *spec;
	imap_notify_name_fn *name;
	void *ctx;
	size_t nnames;
	const char *error;
	enum imap_notify_rc rc;
};

static int
fail(struct parse *p, enum imap_notify_rc rc, const char *error)
{
	p->rc = rc;
	p->error = error;
	return -1;
}

static bool
is_atom(const struct imap_arg *a)
{
	return a->kind == IMAP_ARG_ATOM;
}

/* A MessageNew's list of FETCH items (RFC 5465 §5.2). */
static int
fetch_parse(struct parse *p, const struct imap_arg *a, unsigned *bits_out)
{
	unsigned bits = 0;

	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return fail(p, IMAP_NOTIFY_BAD, "MessageNew wants a list of "
		    "FETCH items");
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *it = &a->list[i];
		unsigned bit = 0;

		if (!is_atom(it))
			return fail(p, IMAP_NOTIFY_BAD, "Bad FETCH item in "
			    "MessageNew");
		for (size_t k = 0; k < ARRAY_LEN(fetch_items); k++) {
			if (strcasecmp(it->str, fetch_items[k].name) == 0)
				bit = fetch_items[k].bit;
		}
		if (bit == 0)
			return fail(p, IMAP_NOTIFY_NO, "MessageNew can fetch "
			    "only UID, FLAGS, MODSEQ, INTERNALDATE and "
			    "RFC822.SIZE here");
		bits |= bit;
	}
	*bits_out = bits;
	return 0;
}

static int
events_parse(struct parse *p, const struct imap_arg *a,
    struct imap_notify_group *g, bool is_selected)
{
	unsigned fetch = 0;

	if (is_imap_arg_atom(a, "NONE")) {
		g->events = 0;
		return 0;
	}
	if (a->kind != IMAP_ARG_LIST || a->len == 0)
		return fail(p, IMAP_NOTIFY_BAD, "Events are a list or NONE");
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *e = &a->list[i];
		unsigned bit = IMAP_NOTIFY_UNKNOWN;

		if (!is_atom(e))
			return fail(p, IMAP_NOTIFY_BAD, "An event is an atom");
		for (size_t k = 0; k < ARRAY_LEN(events); k++) {
			if (strcasecmp(e->str, events[k].name) == 0)
				bit = events[k].event;
		}
		if (bit == IMAP_NOTIFY_MESSAGE_NEW && i + 1 < a->len &&
		    a->list[i + 1].kind == IMAP_ARG_LIST) {
			if (fetch_parse(p, &a->list[i + 1], &fetch) < 0)
				return -1;
			i++;
		}
		/* RFC 5465 §6.1: only message events with SELECTED and
		 * SELECTED-DELAYED; an event-ext is not one (§8). */
		if (is_selected && !(bit & MESSAGE_EVENTS))
			return fail(p, IMAP_NOTIFY_BAD, "Only message events "
			    "go with SELECTED");
		g->events |= bit;
	}
	/* RFC 5465 §5: MessageNew and MessageExpunge together, and both
	 * with FlagChange or AnnotationChange; else BAD. */
	if (!!(g->events & IMAP_NOTIFY_MESSAGE_NEW) !=
	    !!(g->events & IMAP_NOTIFY_MESSAGE_EXPUNGE))
		return fail(p, IMAP_NOTIFY_BAD, "MessageNew and "
		    "MessageExpunge go together");
	if ((g->events & (IMAP_NOTIFY_FLAG_CHANGE |
	    IMAP_NOTIFY_ANNOTATION_CHANGE)) &&
	    !(g->events & IMAP_NOTIFY_MESSAGE_NEW))
		return fail(p, IMAP_NOTIFY_BAD, "FlagChange and "
		    "AnnotationChange need MessageNew and MessageExpunge");
	if (is_selected)
		p->spec->fetch = fetch;
	return 0;
}

static int
name_add(struct parse *p, struct imap_notify_group *g,
    const struct imap_arg *a)
{
	char *n;

	if (p->nnames >= IMAP_NOTIFY_NAMES_MAX)
		return fail(p, IMAP_NOTIFY_BAD, "Too many mailboxes");
	if (a->kind == IMAP_ARG_LIST || a->kind == IMAP_ARG_LITERAL8 ||
	    (n = p->name(p->ctx, a)) == NULL)
		return fail(p, IMAP_NOTIFY_BAD, "Bad mailbox name");
	g->names = xrealloc(g->names, (g->nnames + 1) * sizeof(*g->names));
	g->names[g->nnames++] = n;
	p->nnames++;
	return 0;
}

static int
group_parse(struct parse *p, const struct imap_arg *a, bool *has_selected)
{
	struct imap_notify_spec *spec = p->spec;
	struct imap_notify_group *g;
	size_t k, want;

	if (a->kind != IMAP_ARG_LIST || a->len < 2 || !is_atom(&a->list[0]))
		return fail(p, IMAP_NOTIFY_BAD, "An event group is "
		    "(mailboxes events)");
	for (k = 0; k < ARRAY_LEN(filters); k++) {
		if (strcasecmp(a->list[0].str, filters[k].name) == 0)
			break;
	}
	if (k == ARRAY_LEN(filters))
		return fail(p, IMAP_NOTIFY_BAD, "Unknown mailbox specifier");
	want = filters[k].has_names ? 3 : 2;
	if (a->len != want)
		return fail(p, IMAP_NOTIFY_BAD, "An event group is "
		    "(mailboxes events)");
	if (spec->ngroups >= IMAP_NOTIFY_GROUPS_MAX)
		return fail(p, IMAP_NOTIFY_BAD, "Too many event groups");
	spec->groups = xrealloc(spec->groups,
	    (spec->ngroups + 1) * sizeof(*spec->groups));
	g = &spec->groups[spec->ngroups++];
	memset(g, 0, sizeof(*g));
	g->filter = filters[k].filter;
	if (g->filter == IMAP_NOTIFY_SELECTED ||
	    g->filter == IMAP_NOTIFY_SELECTED_DELAYED) {
		/* RFC 5465 §6.1: only one of them in a command. */
		if (*has_selected)
			return fail(p, IMAP_NOTIFY_BAD, "SELECTED or "
			    "SELECTED-DELAYED only once");
		*has_selected = true;
	}
	if (filters[k].has_names) {
		const struct imap_arg *m = &a->list[1];

		if (m->kind == IMAP_ARG_LIST) {
			if (m->len == 0)
				return fail(p, IMAP_NOTIFY_BAD, "An empty "
				    "mailbox list");
			for (size_t i = 0; i < m->len; i++) {
				if (name_add(p, g, &m->list[i]) < 0)
					return -1;
			}
		} else if (name_add(p, g, m) < 0) {
			return -1;
		}
	}
	return events_parse(p, &a->list[want - 1], g,
	    g->filter == IMAP_NOTIFY_SELECTED ||
	    g->filter == IMAP_NOTIFY_SELECTED_DELAYED);
}

enum imap_notify_rc
imap_notify_parse(const struct imap_arg *args, size_t nargs,
    imap_notify_name_fn *name, void *ctx, struct imap_notify_spec *spec,
    const char **error_out)
{
	struct parse p = { .spec = spec, .name = name, .ctx = ctx,
	    .rc = IMAP_NOTIFY_OK };
	bool has_selected = false;
	unsigned all = 0;
	size_t i = 1;

	memset(spec, 0, sizeof(*spec));
	*error_out = NULL;
	if (nargs == 1 && is_imap_arg_atom(&args[0], "NONE")) {
		spec->is_none = true;
		return IMAP_NOTIFY_OK;
	}
	if (nargs < 2 || !is_imap_arg_atom(&args[0], "SET")) {
		*error_out = "NOTIFY SET or NOTIFY NONE";
		return IMAP_NOTIFY_BAD;
	}
	if (is_imap_arg_atom(&args[1], "STATUS")) {
		spec->is_status = true;
		i = 2;
	}
	if (i >= nargs) {
		*error_out = "NOTIFY SET needs an event group";
		return IMAP_NOTIFY_BAD;
	}
	for (; i < nargs; i++) {
		if (group_parse(&p, &args[i], &has_selected) < 0) {
			*error_out = p.error;
			return p.rc;
		}
	}
	for (i = 0; i < spec->ngroups; i++)
		all |= spec->groups[i].events;
	if (all & ~(unsigned)IMAP_NOTIFY_SUPPORTED) {
		/* RFC 5465 §3.1: NO, not BAD, naming what we support. */
		*error_out = "[BADEVENT (" IMAP_NOTIFY_SUPPORTED_TEXT ")] "
		    "Event not supported";
		return IMAP_NOTIFY_BADEVENT;
	}
	return IMAP_NOTIFY_OK;
}

void
imap_notify_spec_deinit(struct imap_notify_spec *spec)
{
	for (size_t i = 0; i < spec->ngroups; i++) {
		for (size_t k = 0; k < spec->groups[i].nnames; k++)
			free(spec->groups[i].names[k]);
		free(spec->groups[i].names);
	}
	free(spec->groups);
	memset(spec, 0, sizeof(*spec));
}
