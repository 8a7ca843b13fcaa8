/*
 * imap_cmd_list: LIST (RFC 9051 §6.3.9, with LIST-EXTENDED, RFC 5258,
 * LIST-STATUS, RFC 5819, SPECIAL-USE, RFC 6154, and CHILDREN, RFC 3348)
 * and LSUB (RFC 3501 §6.3.9).
 *
 * The store lists every mailbox of the account by name; each is matched
 * against the patterns. Besides the mailboxes that match, a listing may
 * name a parent that only a child makes relevant: a deleted parent whose
 * children stayed (\NonExistent, or \Noselect for RFC 3501), the parent of
 * a subscribed child under LSUB "%" (\Noselect), or under
 * LIST (SUBSCRIBED RECURSIVEMATCH) (CHILDINFO ("SUBSCRIBED")).
 */
#include "imap/imap_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Patterns in one LIST command. */
#define LIST_PATTERNS_MAX 32
/* Bytes of a pattern with wildcards (after the reference). */
#define LIST_PATTERN_MAX 512

/* Length of the INBOX level that starts name ("INBOX" or "INBOX/..."; the
 * store spells it so), or 0. */
static size_t
inbox_prefix(const char *name)
{
	return strncmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/') ? 5 : 0;
}

/* Whether pattern character p matches the character at name[at]: exactly,
 * or in any case within the INBOX level (RFC 9051 §6.3.9: "inbox*" and
 * "inbox/%" match INBOX and its children, INBOX being case-insensitive,
 * §5.1). */
static bool
is_char_match(char p, const char *name, size_t at, size_t inbox_len)
{
	if (p == name[at])
		return true;
	return at < inbox_len &&
	    tolower((unsigned char)p) == tolower((unsigned char)name[at]);
}

/* RFC 9051 §6.3.9: "*" matches anything, "%" anything but the separator.
 * The pattern runs as an automaton over the name, one set of pattern
 * positions per character: time is bounded by pattern times name length,
 * whatever the wildcards (a backtracking matcher is exponential). */
static bool
is_match(const char *pat, const char *name)
{
	size_t plen = strlen(pat), inbox_len = inbox_prefix(name);
	bool on[LIST_PATTERN_MAX + 1], next[LIST_PATTERN_MAX + 1];

	if (strpbrk(pat, "*%") == NULL) {
		size_t at;

		if (plen != strlen(name))
			return false;
		for (at = 0; at < plen; at++) {
			if (!is_char_match(pat[at], name, at, inbox_len))
				return false;
		}
		return true;
	}
	if (plen > LIST_PATTERN_MAX)
		return false;
	memset(on, 0, sizeof(on));
	on[0] = true;
	for (size_t i = 0; i < plen; i++) {
		if (on[i] && (pat[i] == '*' || pat[i] == '%'))
			on[i + 1] = true;
	}
	for (size_t at = 0; name[at] != '\0'; at++) {
		char c = name[at];
		bool is_any = false;

		memset(next, 0, plen + 1);
		for (size_t i = 0; i < plen; i++) {
			if (!on[i])
				continue;
			if (pat[i] == '*' || (pat[i] == '%' && c != '/'))
				next[i] = true;
			else if (pat[i] != '*' && pat[i] != '%' &&
			    is_char_match(pat[i], name, at, inbox_len))
				next[i + 1] = true;
		}
		for (size_t i = 0; i < plen; i++) {
			if (next[i] && (pat[i] == '*' || pat[i] == '%'))
				next[i + 1] = true;
		}
		for (size_t i = 0; i <= plen; i++)
			is_any |= next[i];
		if (!is_any)
			return false;
		memcpy(on, next, plen + 1);
	}
	return on[plen];
}

struct list_opts {
	bool is_lsub;
	bool only_subscribed;	/* selection SUBSCRIBED, or LSUB */
	bool only_special;	/* selection SPECIAL-USE */
	bool is_recursive;	/* selection RECURSIVEMATCH */
	bool show_subscribed;	/* \Subscribed attribute */
	unsigned status;	/* RETURN (STATUS (...)) items */
};

/* One line of the listing. */
struct list_entry {
	char *name;
	const struct store_mailbox *mb;	/* NULL: no such mailbox */
	bool is_selected;	/* passes the selection options itself */
	bool has_childinfo;	/* RECURSIVEMATCH: a child was selected */
};

struct listing {
	struct imap_session *s;
	struct list_opts o;
	char **patterns;
	size_t npats;
	const struct store_mailbox *boxes;
	size_t nboxes;
	/* boxes[nown..] are other users' mailboxes (imap_acl.c), with the
	 * user's rights in rights[i - nown]. */
	size_t nown, nshared;
	const uint32_t *rights;
	struct list_entry *entries;
	size_t n, cap;
};

static bool
is_any_match(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->npats; i++) {
		if (is_match(l->patterns[i], name))
			return true;
	}
	return false;
}

static const struct store_mailbox *
mailbox_find(const struct listing *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->nboxes; i++) {
		if (strlen(l->boxes[i].name) == len &&
		    strncmp(l->boxes[i].name, name, len) == 0)
			return &l->boxes[i];
	}
	return NULL;
}

static struct list_entry *
entry_get(struct listing *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strlen(l->entries[i].name) == len &&
		    strncmp(l->entries[i].name, name, len) == 0)
			return &l->entries[i];
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->entries = xrealloc(l->entries,
		    l->cap * sizeof(*l->entries));
	}
	l->entries[l->n] = (struct list_entry){
		.name = xstrndup(name, len),
		.mb = mailbox_find(l, name, len),
	};
	return &l->entries[l->n++];
}

static bool
is_selected(const struct listing *l, const struct store_mailbox *mb)
{
	if (l->o.only_subscribed && !mb->is_subscribed)
		return false;
	if (l->o.only_special && mb->special == STORE_SPECIAL_NONE)
		return false;
	return true;
}

/* A selected mailbox and the parents its selection makes relevant. */
static void
listing_add(struct listing *l, const struct store_mailbox *mb)
{
	const char *name = mb->name;
	bool is_shown_itself = is_any_match(l, name);

	if (is_shown_itself)
		entry_get(l, name, strlen(name))->is_selected = true;
	for (const char *sep = strchr(name, '/'); sep != NULL;
	    sep = strchr(sep + 1, '/')) {
		size_t len = (size_t)(sep - name);
		const struct store_mailbox *parent = mailbox_find(l, name,
		    len);
		char *pname;
		bool is_shown;

		if (parent != NULL && is_selected(l, parent) &&
		    !l->o.is_recursive)
			continue;
		pname = xstrndup(name, len);
		is_shown = is_any_match(l, pname);
		free(pname);
		if (!is_shown)
			continue;
		if (l->o.is_recursive && !l->o.is_lsub) {
			/* RFC 5258 §3.5: CHILDINFO whatever the child's own
			 * match (Note 2), but a parent that is not selected
			 * itself comes only for a selected child that is not
			 * listed too: servers SHOULD suppress redundant
			 * CHILDINFO (examples 8 and 10; imaptest's listext). */
			if (!is_shown_itself || (parent != NULL &&
			    is_selected(l, parent)))
				entry_get(l, name, len)->has_childinfo = true;
		} else if (is_shown_itself) {
			/* The child is listed: no placeholder for it. */
		} else if (parent == NULL && !l->o.only_subscribed &&
		    !l->o.only_special) {
			/* A deleted parent of a mailbox that stayed. */
			entry_get(l, name, len);
		} else if (l->o.is_lsub) {
			/* RFC 3501 §6.3.9: LSUB "%" shows the unsubscribed
			 * parent of a subscribed child, \Noselect. */
			entry_get(l, name, len);
		}
	}
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name,
	    ((const struct list_entry *)b)->name);
}

static void
entry_write(struct listing *l, const struct list_entry *e)
{
	struct imap_session *s = l->s;
	const struct store_mailbox *mb = e->is_selected ? e->mb : NULL;

	imap_printf(s, "* %s (", l->o.is_lsub ? "LSUB" : "LIST");
	if (mb != NULL && mb->id == 0) {
		/* Subscribed, but no such mailbox. */
		imap_printf(s, "%s", l->o.is_lsub ? "\\Noselect" :
		    "\\NonExistent \\Subscribed");
	} else if (mb != NULL) {
		const char *special = store_special_name(mb->special);

		imap_printf(s, "%s", mb->has_children ? "\\HasChildren" :
		    "\\HasNoChildren");
		if (special != NULL)
			imap_printf(s, " %s", special);
		if (l->o.show_subscribed && mb->is_subscribed)
			imap_printf(s, " \\Subscribed");
	} else if (e->mb != NULL && !l->o.is_lsub) {
		/* Shown for a child's sake (CHILDINFO): its own flags, not
		 * \Subscribed. */
		imap_printf(s, "\\HasChildren");
	} else if (e->mb == NULL && s->is_rev2 && !l->o.is_lsub) {
		imap_printf(s, "\\NonExistent \\HasChildren");
	} else {
		imap_printf(s, "\\Noselect \\HasChildren");
	}
	imap_printf(s, ") \"/\" ");
	imap_write_mailbox(s, e->name);
	if (e->has_childinfo)
		imap_printf(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_printf(s, "\r\n");
	/* Another user's mailbox shows its status only with "r" (RFC 4314
	 * §4, STATUS). */
	if (l->o.status != 0 && mb != NULL && mb->id != 0 &&
	    (mb < l->boxes + l->nown || mb >= l->boxes + l->nown +
	    l->nshared || (l->rights[mb - l->boxes - l->nown] &
	    STORE_ACL_READ)))
		imap_status_write(s, mb, l->o.status);
}

/* RFC 9051 §9 list-mailbox: an astring that may hold "%" and "*". */
static bool
list_mailbox_arg(const struct imap_arg *a, const char **str_out,
    size_t *len_out)
{
	if (a->kind == IMAP_ARG_ATOM) {
		*str_out = a->str;
		*len_out = a->len;
		return true;
	}
	return imap_arg_astring(a, str_out, len_out);
}

/* RFC 5258 §3: selection options. RECURSIVEMATCH alone is BAD. */
static int
list_selection(const struct imap_arg *a, struct list_opts *o)
{
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *p = &a->list[i];

		if (is_imap_arg_atom(p, "SUBSCRIBED")) {
			o->only_subscribed = true;
			o->show_subscribed = true;
		} else if (is_imap_arg_atom(p, "SPECIAL-USE")) {
			o->only_special = true;
		} else if (is_imap_arg_atom(p, "RECURSIVEMATCH")) {
			o->is_recursive = true;
		} else if (!is_imap_arg_atom(p, "REMOTE")) {
			return -1;
		}
	}
	if (o->is_recursive && !o->only_subscribed && !o->only_special)
		return -1;
	return 0;
}

static int
list_return(const struct imap_arg *a, struct list_opts *o)
{
	if (a->kind != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *p = &a->list[i];

		if (is_imap_arg_atom(p, "SUBSCRIBED")) {
			o->show_subscribed = true;
		} else if (is_imap_arg_atom(p, "CHILDREN") ||
		    is_imap_arg_atom(p, "SPECIAL-USE")) {
			/* Always given. */
		} else if (is_imap_arg_atom(p, "STATUS") && i + 1 < a->len) {
			o->status = imap_status_items_parse(&a->list[++i]);
			if (o->status == 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Reads the command into l->o and l->patterns. Returns 0; 1 when the
 * reply was the separator alone (an empty pattern); -1 for BAD. */
static int
list_parse(struct listing *l, const struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args, *pats;
	size_t nargs = cmd->nargs, npats;
	const char *ref, *p;
	size_t reflen, plen;

	if (!l->o.is_lsub && nargs > 0 && args[0].kind == IMAP_ARG_LIST) {
		if (list_selection(&args[0], &l->o) < 0)
			return -1;
		args++;
		nargs--;
	}
	if (!l->o.is_lsub && nargs == 4 && is_imap_arg_atom(&args[2],
	    "RETURN")) {
		if (list_return(&args[3], &l->o) < 0)
			return -1;
		nargs = 2;
	}
	if (nargs != 2 || !imap_arg_astring(&args[0], &ref, &reflen))
		return -1;
	pats = &args[1];
	npats = 1;
	if (args[1].kind == IMAP_ARG_LIST && !l->o.is_lsub) {
		pats = args[1].list;
		npats = args[1].len;
	}
	if (npats == 0 || npats > LIST_PATTERNS_MAX)
		return -1;
	/* RFC 9051 §6.3.9: an empty pattern asks for the separator. */
	if (npats == 1 && list_mailbox_arg(&pats[0], &p, &plen) && plen == 0)
		return 1;
	l->patterns = xcalloc(npats, sizeof(*l->patterns));
	for (size_t i = 0; i < npats; i++) {
		char *joined;

		if (!list_mailbox_arg(&pats[i], &p, &plen))
			return -1;
		joined = xasprintf("%s%s", p[0] == '/' ? "" : ref, p);
		l->patterns[l->npats] = imap_name_decode(l->s, joined,
		    strlen(joined));
		free(joined);
		/* A pattern that is not modified UTF-7 (RFC 3501 §5.1.3:
		 * "&" opens a base64 run) or too long names no mailbox:
		 * it lists nothing, as Dovecot answers (imaptest's atoms
		 * script); the astring itself was well formed. */
		if (l->patterns[l->npats] == NULL)
			continue;
		if (strpbrk(l->patterns[l->npats], "*%") != NULL &&
		    strlen(l->patterns[l->npats]) > LIST_PATTERN_MAX) {
			free(l->patterns[l->npats]);
			return -1;
		}
		l->npats++;
	}
	return 0;
}

static void
listing_deinit(struct listing *l)
{
	for (size_t i = 0; i < l->npats; i++)
		free(l->patterns[i]);
	free(l->patterns);
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
}

/* When the listing is of subscriptions, the names subscribed whose
 * mailbox is gone join the store's mailboxes (RFC 9051 §6.3.7 keeps them),
 * as id 0: \NonExistent (RFC 5258 §3.4), or \Noselect for LSUB. Returns
 * a new array of shallow copies (free the array only); *subs_out holds the
 * names. */
static struct store_mailbox *
boxes_with_subscriptions(struct listing *l, const struct store_mailbox *boxes,
    size_t nboxes, size_t *n_out, char ***subs_out)
{
	struct store_mailbox *all;
	size_t n = nboxes, nsubs = 0;
	enum store_err err;

	*subs_out = NULL;
	if (l->o.only_subscribed && store_subscription_list(l->s->ctx->store,
	    l->s->id.account, subs_out, &err) == 0) {
		while ((*subs_out)[nsubs] != NULL)
			nsubs++;
	}
	all = xcalloc(nboxes + nsubs + 1, sizeof(*all));
	memcpy(all, boxes, nboxes * sizeof(*all));
	for (size_t i = 0; i < nsubs; i++) {
		const char *name = (*subs_out)[i];
		const struct store_mailbox *mb;

		l->boxes = boxes;
		l->nboxes = nboxes;
		mb = mailbox_find(l, name, strlen(name));
		if (mb != NULL) {
			/* Another user's mailbox keeps its subscription in
			 * this account. */
			all[mb - boxes].is_subscribed = true;
			continue;
		}
		all[n++] = (struct store_mailbox){
			.name = (char *)name,
			.is_subscribed = true,
		};
	}
	*n_out = n;
	return all;
}

/* Adds to *all (n entries) the other users' mailboxes the user may look
 * up, as "Other Users/OWNER/NAME" (RFC 2342), each a shallow copy with
 * its own name (kept in *names_out) and children counted among those
 * visible only, so that \HasChildren tells nothing of the others.
 * *rights_out receives the user's rights on each. */
static struct store_mailbox *
boxes_with_shared(struct imap_session *s, struct store_mailbox *all,
    size_t *n, struct store_acl_shared **shared_out, size_t *nshared_out,
    uint32_t **rights_out)
{
	struct store_acl_shared *sh = NULL;
	size_t nsh = 0;
	enum store_err err;

	*shared_out = NULL;
	*nshared_out = 0;
	*rights_out = xcalloc(1, sizeof(**rights_out));
	if (store_acl_shared_list(s->ctx->store, s->id.account, &sh, &nsh,
	    &err) < 0 || nsh == 0)
		return all;
	all = xrealloc(all, (*n + nsh + 1) * sizeof(*all));
	*rights_out = xrealloc(*rights_out, nsh * sizeof(**rights_out));
	for (size_t i = 0; i < nsh; i++) {
		char *name = imap_acl_other_name(sh[i].owner_address,
		    sh[i].mb.name);
		bool has_children = false;
		size_t len = strlen(sh[i].mb.name);

		for (size_t k = 0; k < nsh && !has_children; k++)
			has_children = sh[k].owner == sh[i].owner &&
			    strncmp(sh[k].mb.name, sh[i].mb.name, len) == 0 &&
			    sh[k].mb.name[len] == '/';
		free(sh[i].mb.name);
		sh[i].mb.name = name;
		sh[i].mb.has_children = has_children;
		sh[i].mb.is_subscribed = false;
		all[*n + i] = sh[i].mb;
		(*rights_out)[i] = sh[i].rights;
	}
	*n += nsh;
	*shared_out = sh;
	*nshared_out = nsh;
	return all;
}

void
imap_cmd_list(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct listing l = { .s = s };
	struct store_mailbox *boxes = NULL, *all;
	struct store_mailbox *own;
	size_t nboxes = 0, nall, nshared, nown;
	struct store_acl_shared *shared;
	uint32_t *rights;
	char **subs = NULL;
	enum store_err err;
	int rc;

	l.o.is_lsub = strcmp(cmd->name, "LSUB") == 0;
	l.o.only_subscribed = l.o.is_lsub;
	l.o.is_recursive = l.o.is_lsub;
	rc = list_parse(&l, cmd);
	if (rc != 0) {
		listing_deinit(&l);
		if (rc == 1) {
			imap_printf(s, "* %s (\\Noselect) \"/\" \"\"\r\n",
			    cmd->name);
			imap_done(s, "OK", "%s completed", cmd->name);
		} else {
			imap_done(s, "BAD", "Syntax: %s", l.o.is_lsub ?
			    "LSUB reference pattern" : "LIST [(options)] "
			    "reference pattern [RETURN (options)]");
		}
		return;
	}
	if (store_mailbox_list(s->ctx->store, s->id.account, &boxes, &nboxes,
	    &err) < 0) {
		listing_deinit(&l);
		imap_done_store_err(s, err);
		return;
	}
	/* Other users' mailboxes come before the subscriptions, so that a
	 * subscribed one is found as the mailbox it is. */
	own = xcalloc(nboxes + 1, sizeof(*own));
	memcpy(own, boxes, nboxes * sizeof(*own));
	nown = nboxes;
	own = boxes_with_shared(s, own, &nown, &shared, &nshared, &rights);
	all = boxes_with_subscriptions(&l, own, nown, &nall, &subs);
	free(own);
	l.nown = nboxes;
	l.nshared = nshared;
	l.rights = rights;
	l.boxes = all;
	l.nboxes = nall;
	for (size_t i = 0; i < nall; i++) {
		if (is_selected(&l, &all[i]))
			listing_add(&l, &all[i]);
	}
	if (l.n > 0)
		qsort(l.entries, l.n, sizeof(*l.entries), entry_cmp);
	for (size_t i = 0; i < l.n; i++)
		entry_write(&l, &l.entries[i]);
	listing_deinit(&l);
	free(all);
	free(rights);
	store_acl_shared_list_free(&shared, nshared);
	store_strings_free(&subs);
	store_mailbox_list_free(&boxes, nboxes);
	imap_done(s, "OK", "%s completed", cmd->name);
}
