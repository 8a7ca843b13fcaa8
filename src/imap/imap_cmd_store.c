/*
 * imap_cmd_store: STORE and UID STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3
 * UNCHANGEDSINCE and MODIFIED). One store change for the whole set; once
 * it is durable the view learns the new flags and the untagged FETCH
 * replies are written, a slice at a time while the output has room.
 * Runs on the session's worker thread.
 */
#include "imap/imap_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

struct store_job {
	size_t *idx;		/* view indexes, ascending */
	size_t n;
	uint32_t *uids;		/* what went to the store */
	size_t nuids;
	enum store_flag_mode mode;
	uint32_t flags;
	char *keywords;		/* normalized by imap_flags_parse */
	bool is_silent;
	bool has_unchangedsince;
	uint64_t unchangedsince;

	/* After the change. */
	bool is_changed_known;	/* the store answered */
	uint64_t modseq;	/* the change's MODSEQ */
	uint32_t *modified;	/* UIDs UNCHANGEDSINCE refused, ascending */
	size_t nmodified;
	uint32_t *failed;	/* numbers for MODIFIED: sequence numbers,
				 * or UIDs for UID STORE */
	size_t nfailed;
	bool *is_reread;	/* per idx: the view has the store's flags */
	bool *is_found;		/* per idx: still in the store */
	size_t pos;		/* next idx to answer */
};

static void
store_job_free(void *arg)
{
	struct store_job *j = arg;

	if (j == NULL)
		return;
	free(j->idx);
	free(j->uids);
	free(j->keywords);
	free(j->modified);
	free(j->failed);
	free(j->is_reread);
	free(j->is_found);
	free(j);
}

/* ---- Flags ------------------------------------------------------------ */

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool
is_uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* ---- Replies ------------------------------------------------------------ */

static void
store_finish(struct imap_session *s, struct store_job *j)
{
	bool has_gone = false;
	char *set;

	s->view->is_stale = true;
	if (!s->cmd->is_uid) {
		/* RFC 9051 §7.1 EXPUNGEISSUED (and RFC 2180 on multiple
		 * access): a message of the set that another session
		 * expunged keeps its number until this session may say
		 * EXPUNGE, but was not changed; the client hears it with a
		 * NO. A UID STORE hears the EXPUNGE itself before its OK. */
		imap_view_sync(s, false, true);
		for (size_t k = 0; k < j->n && !has_gone; k++)
			has_gone = j->idx[k] < s->view->n &&
			    s->view->msgs[j->idx[k]].is_expunged;
	}
	if (has_gone) {
		/* The words are for people and tools that predate the
		 * code: imaptest's benchmark counts a NO to STORE as an
		 * error unless its text says "have been deleted". */
		imap_done(s, "NO", "[EXPUNGEISSUED] Some of the messages "
		    "have been deleted by another session; the others were "
		    "changed");
		return;
	}
	if (j->nfailed == 0) {
		imap_done(s, "OK", "STORE completed");
		return;
	}
	/* RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE. */
	set = imap_fetch_set_format(j->failed, j->nfailed);
	imap_done(s, "OK", "[MODIFIED %s] Conditional STORE failed", set);
	free(set);
}

/* Updates the view and writes the FETCH replies while the output has
 * room; the rest follows from job_drained. */
static void
store_pump(struct imap_session *s)
{
	struct store_job *j = s->job;

	while (j->pos < j->n && net_conn_pending(s->conn) < NET_DRAIN_LOW) {
		size_t k = j->pos++;
		const struct imap_msg *m = &s->view->msgs[j->idx[k]];
		const char *had;
		uint32_t flags;
		char *kw;

		if (m->is_expunged)
			continue;
		if (j->has_unchangedsince && (j->unchangedsince == 0 ||
		    is_uid_in(j->modified, j->nmodified, m->uid))) {
			j->failed[j->nfailed++] = s->cmd->is_uid ? m->uid :
			    (uint32_t)(j->idx[k] + 1);
			continue;
		}
		if (j->is_reread[k] && !j->is_found[k])
			continue;	/* gone meanwhile */
		if (!j->is_reread[k]) {
			flags = j->mode == STORE_FLAGS_ADD ?
			    m->flags | j->flags : j->mode ==
			    STORE_FLAGS_REMOVE ? m->flags & ~j->flags :
			    j->flags;
			had = imap_view_keywords(s->view, j->idx[k]);
			kw = store_keywords_apply(had, j->keywords, j->mode);
			/* The store gives a new MODSEQ only to messages
			 * whose flags changed (RFC 7162 §3.1). */
			if (flags != m->flags ||
			    !is_store_keywords_equal(kw, had))
				imap_view_update(s->view, j->idx[k], flags, kw,
				    j->modseq);
			free(kw);
		}
		if (j->is_silent && !s->is_condstore)
			continue;
		/* RFC 9051 §7.3.5: a new keyword is in FLAGS first. */
		imap_view_flags_announce(s);
		/* RFC 9051 §6.4.6: the new flags, unless .SILENT; RFC 7162
		 * §3.1.3: with CONDSTORE the MODSEQ even then. RFC 9051
		 * §6.4.9: UID STORE replies carry the UID. */
		/* RFC 9586 §3.3: UIDFETCH under UIDONLY, the UID in its
		 * name. */
		if (s->is_uidonly)
			imap_printf(s, "* UIDFETCH %" PRIu32 " (", m->uid);
		else
			imap_printf(s, "* %zu FETCH (", j->idx[k] + 1);
		if (!j->is_silent) {
			imap_write(s, "FLAGS ", 6);
			imap_write_flags(s, imap_view_flags(s, j->idx[k]),
			    imap_view_keywords(s->view, j->idx[k]));
		}
		/* With CONDSTORE the client files the MODSEQ by UID: give
		 * it always (RFC 7162 §3.2.4 asks it under QRESYNC). */
		if ((s->cmd->is_uid || s->is_condstore) && !s->is_uidonly)
			imap_printf(s, "%sUID %" PRIu32, j->is_silent ? "" :
			    " ", m->uid);
		if (s->is_condstore)
			imap_printf(s, "%sMODSEQ (%" PRIu64 ")",
			    j->is_silent && s->is_uidonly ? "" : " ",
			    imap_view_modseq(s, j->idx[k]));
		imap_write(s, ")\r\n", 3);
	}
	if (j->pos == j->n)
		store_finish(s, j);
}

static void
store_drained(struct imap_session *s)
{
	struct store_job *j = s->job;

	if (j != NULL && j->is_changed_known)
		store_pump(s);
}

static void
store_done(void *arg, const struct store_change_result *r)
{
	struct imap_session *s = arg;
	struct store_job *j;

	if (!imap_resumed(s))
		return;
	j = s->job;
	if (r->err != STORE_OK && r->err != STORE_MODIFIED) {
		log_error(s->sid, "imap.store error=\"%s\"",
		    store_err_text(r->err));
		imap_done(s, "NO", "[%s] Cannot change the flags: %s",
		    r->err == STORE_TEMP || r->err == STORE_NO_SPACE ?
		    "UNAVAILABLE" : "SERVERBUG",
		    store_err_text(r->err));
		return;
	}
	j->modseq = r->modseq;
	if (r->nmodified > 0) {
		j->modified = xmalloc(r->nmodified * sizeof(*j->modified));
		memcpy(j->modified, r->modified,
		    r->nmodified * sizeof(*j->modified));
		j->nmodified = r->nmodified;
		qsort(j->modified, j->nmodified, sizeof(*j->modified),
		    uid_cmp);
	}
	/* Replies that show the flags show them as the store has them,
	 * changes by other sessions included; .SILENT shows none, so the
	 * view learns only this change, and imap_done() reports the rest
	 * (RFC 9051 §7.5.1). */
	if (!j->is_silent) {
		bool *pick = xcalloc(j->n > 0 ? j->n : 1, sizeof(*pick));

		for (size_t k = 0; k < j->n; k++)
			pick[k] = !s->view->msgs[j->idx[k]].is_expunged &&
			    !is_uid_in(j->modified, j->nmodified,
			    s->view->msgs[j->idx[k]].uid);
		if (imap_store_reread(s, j->idx, j->n, pick, j->is_found) ==
		    0) {
			free(j->is_reread);
			j->is_reread = pick;
		} else {
			free(pick);
		}
	}
	j->is_changed_known = true;
	s->view->is_stale = true;
	store_pump(s);
}

int
imap_store_reread(struct imap_session *s, const size_t *idx, size_t n,
    const bool *pick, bool *is_found_out)
{
	struct imap_view *v = s->view;
	struct store_msg *list = NULL;
	size_t nlist = 0, at = 0;
	uint32_t lo = 0, hi = 0;
	enum store_err err;
	bool is_any = false;

	for (size_t k = 0; k < n; k++) {
		uint32_t uid = v->msgs[idx[k]].uid;

		is_found_out[k] = false;
		if (!pick[k])
			continue;
		lo = is_any && lo < uid ? lo : uid;
		hi = is_any && hi > uid ? hi : uid;
		is_any = true;
	}
	if (!is_any)
		return 0;
	if (store_msg_list(s->ctx->store, v->mailbox, lo, hi, &list, &nlist,
	    &err) < 0) {
		log_error(s->sid, "imap.reread error=\"%s\"",
		    store_err_text(err));
		return -1;
	}
	/* Both lists ascend by UID: one merge. */
	for (size_t k = 0; k < n; k++) {
		const struct imap_msg *m = &v->msgs[idx[k]];

		if (!pick[k])
			continue;
		while (at < nlist && list[at].uid < m->uid)
			at++;
		if (at < nlist && list[at].uid == m->uid) {
			is_found_out[k] = true;
			imap_view_update(v, idx[k], list[at].flags,
			    list[at].keywords, list[at].modseq);
		}
	}
	store_msg_list_free(&list, nlist);
	return 0;
}

/* ---- The command --------------------------------------------------------- */

/* store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) (RFC 9051 §9). */
static int
item_parse(const struct imap_arg *a, enum store_flag_mode *mode_out,
    bool *is_silent_out)
{
	const char *w;

	if (a->kind != IMAP_ARG_ATOM)
		return -1;
	w = a->str;
	*mode_out = STORE_FLAGS_REPLACE;
	if (*w == '+' || *w == '-') {
		*mode_out = *w == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		w++;
	}
	if (strcasecmp(w, "FLAGS") == 0)
		*is_silent_out = false;
	else if (strcasecmp(w, "FLAGS.SILENT") == 0)
		*is_silent_out = true;
	else
		return -1;
	return 0;
}

void
imap_cmd_store(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct store_job *j;
	struct store_change c;
	struct imap_arg list;
	const struct imap_arg *flags_arg;
	size_t k = 1;
	int rc;

	if (cmd->nargs < 3 || cmd->args[0].kind != IMAP_ARG_ATOM) {
		imap_done(s, "BAD", "Expected a sequence set, an item and "
		    "flags");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	/* store-modifiers (RFC 7162 §3.1.3): (UNCHANGEDSINCE n). */
	if (cmd->args[1].kind == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];

		if (m->len != 2 || !is_imap_arg_atom(&m->list[0],
		    "UNCHANGEDSINCE") ||
		    !imap_arg_number64(&m->list[1], &j->unchangedsince)) {
			store_job_free(j);
			imap_done(s, "BAD", "Unknown STORE modifier");
			return;
		}
		j->has_unchangedsince = true;
		k = 2;
	}
	if (cmd->nargs < k + 2 || item_parse(&cmd->args[k], &j->mode,
	    &j->is_silent) < 0) {
		store_job_free(j);
		imap_done(s, "BAD", "Expected FLAGS, +FLAGS or -FLAGS and a "
		    "flag list");
		return;
	}
	/* The flags come as one list, or as atoms one after another. */
	flags_arg = &cmd->args[k + 1];
	if (cmd->nargs > k + 2 || flags_arg->kind != IMAP_ARG_LIST) {
		memset(&list, 0, sizeof(list));
		list.kind = IMAP_ARG_LIST;
		list.len = cmd->nargs - (k + 1);
		list.list = &cmd->args[k + 1];
		flags_arg = &list;
		for (size_t i = 0; i < list.len; i++) {
			if (list.list[i].kind != IMAP_ARG_ATOM &&
			    list.list[i].kind != IMAP_ARG_NIL) {
				store_job_free(j);
				imap_done(s, "BAD", "Expected a flag list");
				return;
			}
		}
	}
	if (imap_flags_parse(flags_arg, &j->flags, &j->keywords) < 0) {
		store_job_free(j);
		imap_done(s, "BAD", "Invalid flag in the list");
		return;
	}
	rc = imap_view_set(s, &cmd->args[0], cmd->is_uid, &j->idx, &j->n);
	if (rc < 0) {
		store_job_free(j);
		imap_done(s, "BAD", rc == -2 ? "No message has that sequence "
		    "number" : "Invalid sequence set");
		return;
	}
	if (s->view->is_readonly) {
		store_job_free(j);
		imap_done(s, "NO", "[READ-ONLY] The mailbox is open read-only "
		    "(EXAMINE)");
		return;
	}
	/* RFC 4314 §4: "s" for \Seen, "t" for \Deleted, "w" for the rest;
	 * FLAGS (replacing) may change any of them. */
	if (!is_imap_acl_flags_allowed(s->view->rights, j->flags, j->keywords,
	    j->mode == STORE_FLAGS_REPLACE)) {
		store_job_free(j);
		imap_done(s, "NO", "[NOPERM] Permission denied");
		return;
	}
	/* RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE; the mailbox
	 * selected before learns its HIGHESTMODSEQ now. */
	if (j->has_unchangedsince && !s->is_condstore) {
		s->is_condstore = true;
		imap_printf(s, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n",
		    s->view->modseq);
	}
	j->uids = xcalloc(j->n > 0 ? j->n : 1, sizeof(*j->uids));
	j->is_reread = xcalloc(j->n > 0 ? j->n : 1, sizeof(*j->is_reread));
	j->is_found = xcalloc(j->n > 0 ? j->n : 1, sizeof(*j->is_found));
	j->failed = xcalloc(j->n > 0 ? j->n : 1, sizeof(*j->failed));
	for (size_t i = 0; i < j->n; i++) {
		const struct imap_msg *m = &s->view->msgs[j->idx[i]];

		if (!m->is_expunged)
			j->uids[j->nuids++] = m->uid;
	}
	s->job = j;
	s->job_drained = store_drained;
	s->job_free = store_job_free;
	/* RFC 7162 §3.1.3: every message has a MODSEQ of at least 1, so
	 * UNCHANGEDSINCE 0 fails them all; the store reads 0 as "none". */
	if (j->nuids == 0 || (j->has_unchangedsince &&
	    j->unchangedsince == 0)) {
		j->is_changed_known = true;
		store_pump(s);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.mailbox = s->view->mailbox;
	c.uids = j->uids;
	c.nuids = j->nuids;
	c.kind = STORE_CHANGE_FLAGS;
	c.mode = j->mode;
	c.flags = j->flags;
	c.keywords = j->keywords;
	c.unchangedsince = j->unchangedsince;
	imap_wait(s);
	if (store_change_submit(s->ctx->store, &c, s->base, store_done,
	    s) < 0) {
		(void)imap_resumed(s);
		imap_done(s, "NO", "[UNAVAILABLE] The server is shutting down");
	}
}
