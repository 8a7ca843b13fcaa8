/*
 * imap_cmd_metadata: METADATA and METADATA-SERVER (RFC 5464): GETMETADATA
 * with MAXSIZE and DEPTH, SETMETADATA, on the server (mailbox "") and on
 * the account's own mailboxes. Private entries are the user's own; shared
 * entries of a mailbox are its owner's (without ACL rights on others'
 * mailboxes, only the owner reads or writes them); shared server entries
 * are read by everyone and written only by the administrator.
 * /private/specialuse of a mailbox is its special use (RFC 6154 §4),
 * read and set through the mailbox itself, not kept as an entry.
 * Arguments are parsed by imap_metadata.c; entries live in the store
 * (store_metadata_*), written through the writer and answered once
 * durable.
 */
#include "imap/imap_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const char SPECIALUSE[] = "/private/specialuse";

/* The mailbox an argument names: *id_out 0 for the server (""), else one
 * of the account's mailboxes, with its special use. Ends the command and
 * returns -1 when there is none. */
static int
metadata_mailbox(struct imap_session *s, const struct imap_arg *a,
    int64_t *id_out, enum store_special *special_out)
{
	struct store_mailbox mb;
	enum store_err err;
	const char *str;
	size_t len;
	char *name;

	*id_out = 0;
	*special_out = STORE_SPECIAL_NONE;
	if (!imap_arg_astring(a, &str, &len)) {
		imap_done(s, "BAD", "Invalid mailbox name");
		return -1;
	}
	if (len == 0)
		return 0;	/* RFC 5464 §3.2: the server's entries */
	if ((name = imap_mailbox_arg(s, a)) == NULL) {
		imap_done(s, "BAD", "Invalid mailbox name");
		return -1;
	}
	/* Only the account's own mailboxes: another user's entries stay
	 * theirs. */
	if (store_mailbox_get(s->ctx->store, s->id.account, name, &mb,
	    &err) < 0) {
		free(name);
		imap_done_store_err(s, err);
		return -1;
	}
	free(name);
	*id_out = mb.id;
	*special_out = mb.special;
	store_mailbox_deinit(&mb);
	return 0;
}

/* An entry value: a string, or a literal8 when it holds NUL (RFC 5464
 * §5, value = nstring / literal8). */
static void
value_write(struct imap_session *s, const char *v, size_t len)
{
	if (v == NULL) {
		imap_printf(s, "NIL");
	} else if (memchr(v, '\0', len) != NULL) {
		imap_printf(s, "~{%zu}\r\n", len);
		imap_write(s, v, len);
	} else {
		imap_write_string(s, v, len);
	}
}

/* Is name below (or at) want within depth? */
static bool
is_in_depth(const char *name, const char *want, enum imap_metadata_depth d)
{
	size_t n = strlen(want);
	const char *rest;

	if (strcmp(name, want) == 0)
		return true;
	if (d == IMAP_METADATA_DEPTH_0 || strncmp(name, want, n) != 0 ||
	    name[n] != '/')
		return false;
	rest = name + n + 1;
	return d == IMAP_METADATA_DEPTH_INFINITY || strchr(rest, '/') == NULL;
}

/* An entry name as an atom, as the RFC's examples show them, when it is
 * one (ASTRING-CHAR, RFC 9051 §9); else quoted. */
static void
name_write(struct imap_session *s, const char *name)
{
	size_t n = strlen(name);

	if (strpbrk(name, "(){\"\\") == NULL) {
		imap_write(s, name, n);
		return;
	}
	imap_write_string(s, name, n);
}

struct get_out {
	struct imap_session *s;
	const struct imap_metadata_get *g;
	bool is_open;
	uint64_t longest;	/* of the entries MAXSIZE left out */
	const struct imap_arg *mailbox;
};

/* One entry of the response, or none when MAXSIZE leaves it out (RFC 5464
 * §4.2.1: the tagged OK says LONGENTRIES with the largest such size). */
static void
get_put(struct get_out *o, const char *name, const char *v, size_t len)
{
	const char *str;
	size_t mlen;

	if (v != NULL && o->g->has_maxsize && len > o->g->maxsize) {
		if (len > o->longest)
			o->longest = len;
		return;
	}
	if (!o->is_open) {
		imap_arg_astring(o->mailbox, &str, &mlen);
		imap_printf(o->s, "* METADATA ");
		imap_write_string(o->s, str, mlen);
		imap_printf(o->s, " (");
		o->is_open = true;
	} else {
		imap_printf(o->s, " ");
	}
	name_write(o->s, name);
	imap_printf(o->s, " ");
	value_write(o->s, v, len);
}

void
imap_cmd_getmetadata(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_metadata_get g;
	struct store_metadata *rows = NULL;
	enum store_special special;
	struct get_out o;
	enum store_err err;
	const char *error, *su;
	size_t nrows = 0;
	bool *is_sent;
	int64_t mailbox;

	if (imap_metadata_get_parse(cmd, &g, &error) < 0) {
		imap_done(s, "BAD", "%s", error);
		return;
	}
	if (metadata_mailbox(s, g.mailbox, &mailbox, &special) < 0) {
		imap_metadata_get_deinit(&g);
		return;
	}
	if (store_metadata_list(s->ctx->store, s->id.account, mailbox, &rows,
	    &nrows, &err) < 0) {
		imap_metadata_get_deinit(&g);
		imap_done_store_err(s, err);
		return;
	}
	su = mailbox != 0 ? store_special_name(special) : NULL;
	memset(&o, 0, sizeof(o));
	o.s = s;
	o.g = &g;
	o.mailbox = g.mailbox;
	is_sent = xcalloc(nrows + 1, sizeof(*is_sent));
	for (size_t i = 0; i < g.n; i++) {
		bool is_found = false, is_dup = false, is_below = false;

		for (size_t k = 0; k < i; k++)
			if (strcmp(g.names[k], g.names[i]) == 0)
				is_dup = true;
		if (is_dup)
			continue;
		/* The special use, shown where a row would be. */
		if (mailbox != 0 && is_in_depth(SPECIALUSE, g.names[i],
		    g.depth)) {
			if (su != NULL && strcmp(SPECIALUSE, g.names[i]) ==
			    0)
				is_found = true;
			else if (su != NULL)
				is_below = true;
			if (su != NULL && !is_sent[nrows]) {
				get_put(&o, SPECIALUSE, su, strlen(su));
				is_sent[nrows] = true;
			}
		}
		for (size_t r = 0; r < nrows; r++) {
			if (!is_in_depth(rows[r].name, g.names[i], g.depth))
				continue;
			if (strcmp(rows[r].name, g.names[i]) == 0)
				is_found = true;
			else
				is_below = true;
			if (is_sent[r])
				continue;
			get_put(&o, rows[r].name, rows[r].value, rows[r].len);
			is_sent[r] = true;
		}
		/* An entry asked for by name that has no value is NIL, unless
		 * DEPTH found entries below it: RFC 5464 §4.2.2's example
		 * answers DEPTH 1 of /private/filters/values with its two
		 * children only. */
		if (!is_found && !is_below)
			get_put(&o, g.names[i], NULL, 0);
	}
	if (o.is_open)
		imap_printf(s, ")\r\n");
	free(is_sent);
	store_metadata_list_free(&rows, nrows);
	imap_metadata_get_deinit(&g);
	if (o.longest > 0)
		imap_done(s, "OK", "[METADATA LONGENTRIES %" PRIu64 "] "
		    "GETMETADATA completed", o.longest);
	else
		imap_done(s, "OK", "GETMETADATA completed");
}

static void
metadata_set_done(void *arg, enum store_err err)
{
	struct imap_session *s = arg;

	if (!imap_resumed(s))
		return;
	switch (err) {
	case STORE_OK:
		imap_done(s, "OK", "SETMETADATA completed");
		return;
	case STORE_NOT_ALLOWED:
		/* RFC 5464 §4.3. */
		imap_done(s, "NO", "[METADATA TOOMANY] At most %zu entries "
		    "per account", s->cfg->imap_metadata_entries);
		return;
	case STORE_OVER_QUOTA:
		/* RFC 5464 §4.3: no room for more; in bytes here. */
		imap_done(s, "NO", "[METADATA TOOMANY] At most %zu bytes of "
		    "entries per account", s->cfg->imap_metadata_total);
		return;
	case STORE_INVALID:
		imap_done(s, "NO", "[USEATTR] /private/specialuse takes one "
		    "special-use attribute (\\Sent, \\Drafts, \\Trash, "
		    "\\Junk, \\Archive, \\All, \\Flagged) or NIL");
		return;
	default:
		imap_done_store_err(s, err);
		return;
	}
}

void
imap_cmd_setmetadata(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_metadata_set m;
	struct store_metadata_op op;
	enum store_special special;
	const char *error;
	int64_t mailbox;

	/* A literal too large was dropped as it came (the session's
	 * literal_check), not held in memory: answered here, before the
	 * parse would call it a bad value. */
	for (size_t i = 0; i < cmd->nargs; i++) {
		const struct imap_arg *a = &cmd->args[i];
		size_t n = a->kind == IMAP_ARG_LIST ? a->len : 1;

		for (size_t k = 0; k < n; k++) {
			const struct imap_arg *v = a->kind == IMAP_ARG_LIST ?
			    &a->list[k] : a;

			if (!v->is_spooled)
				continue;
			if (v->spool_errno == E2BIG) {
				imap_done(s, "NO", "[LIMIT] The values of one "
				    "SETMETADATA are too large together");
				return;
			}
			imap_done(s, "NO", "[METADATA MAXSIZE %zu] Value too "
			    "large", s->cfg->imap_metadata_size);
			return;
		}
	}
	if (imap_metadata_set_parse(cmd, &m, &error) < 0) {
		imap_done(s, "BAD", "%s", error);
		return;
	}
	for (size_t i = 0; i < m.n; i++) {
		/* RFC 5464 §4.3: MAXSIZE names the largest value we take;
		 * the literal itself was bounded by imap_literal_max. */
		if (m.entries[i].value != NULL &&
		    m.entries[i].len > s->cfg->imap_metadata_size) {
			imap_metadata_set_deinit(&m);
			imap_done(s, "NO", "[METADATA MAXSIZE %zu] Value too "
			    "large", s->cfg->imap_metadata_size);
			return;
		}
	}
	if (metadata_mailbox(s, m.mailbox, &mailbox, &special) < 0) {
		imap_metadata_set_deinit(&m);
		return;
	}
	for (size_t i = 0; i < m.n && mailbox == 0; i++) {
		if (strncmp(m.entries[i].name, "/shared/", 8) == 0) {
			imap_metadata_set_deinit(&m);
			imap_done(s, "NO", "[NOPERM] Shared server entries are "
			    "the administrator's");
			return;
		}
	}
	memset(&op, 0, sizeof(op));
	op.account = s->id.account;
	op.mailbox = mailbox;
	op.entries = m.entries;
	op.n = m.n;
	op.entries_max = s->cfg->imap_metadata_entries;
	op.total_max = s->cfg->imap_metadata_total;
	imap_wait(s);
	if (store_metadata_submit(s->ctx->store, &op, s->base,
	    metadata_set_done, s) < 0) {
		imap_wait_cancel(s);
		imap_metadata_set_deinit(&m);
		imap_done_store_err(s, STORE_TEMP);
		return;
	}
	imap_metadata_set_deinit(&m);
}
