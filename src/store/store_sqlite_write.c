/*
 * store_sqlite_write: the embedded backend's writer side, run only by the
 * writer thread (store_writer.c). One batch of requests becomes one
 * transaction:
 *
 *   BEGIN IMMEDIATE
 *   give every delivery's body a blob id, and its file the name
 *       DATA/blobs/xx/<id> (a link of its O_TMPFILE inode, or a rename
 *       from DATA/tmp: store_delivery_link)
 *   make the files and their directory entries durable (sync_files, on
 *       the syncer thread) while, on the writer thread:
 *   for each request: SAVEPOINT, apply, RELEASE (or ROLLBACK TO: a request
 *       that fails leaves no trace and does not fail the others)
 *   wait for the syncer; unlink the bodies no recipient took
 *   COMMIT (synchronous=FULL: one fsync of the WAL)
 *   unlink the files of blobs whose last message went
 *
 * so a message's metadata is never durable before its body, and a caller
 * is told of success only after the COMMIT. Blob ids come from meta
 * blob_next, read inside the transaction (the write lock also serializes
 * another process, the CLI, writing the same store) and consecutive within
 * a batch: a crash between naming the files and the COMMIT leaves files at
 * ids from blob_next on, which the next open removes
 * (sq_orphans_recover); a body nobody took is unlinked before the COMMIT
 * moves blob_next past it.
 *
 * If something fails that a savepoint cannot undo (naming a file, the
 * sync, or SQLite rolling the whole transaction back, as it may on
 * SQLITE_FULL or an I/O error), the guilty request fails with STORE_TEMP,
 * or STORE_NO_SPACE when the disk was full (ENOSPC, EDQUOT, SQLITE_FULL),
 * everything is rolled back, the files lose their new names and the batch
 * is run again without it. Nothing of a failed attempt stays: once space
 * returns, the next batch runs as if nothing had happened.
 */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* Texts indexed per step of the background indexer: small enough that a
 * request arriving meanwhile waits a few milliseconds at most. */
#define FTS_CHUNK 16
/* Ids past blob_next probed at open for files of a batch that never
 * committed: a batch names its files at consecutive ids, and a hole comes
 * only from a crash while files were losing their names after a failed
 * attempt, so it is shorter than a batch. */
#define ORPHAN_PROBE (2 * STORE_BATCH_MAX_LIMIT)
/* Aliases visited when looking for a loop before adding one. */
#define ALIAS_WALK_MAX 1000

/* RFC 6154 mailboxes every account starts with. */
static const struct {
	const char *name;
	enum store_special special;
} default_mailboxes[] = {
	{ "INBOX", STORE_SPECIAL_NONE },
	{ "Sent", STORE_SPECIAL_SENT },
	{ "Drafts", STORE_SPECIAL_DRAFTS },
	{ "Trash", STORE_SPECIAL_TRASH },
	{ "Junk", STORE_SPECIAL_JUNK },
	{ "Archive", STORE_SPECIAL_ARCHIVE },
};

struct batch {
	struct store *st;
	struct sq_state *sq;
	struct sq_conn *c;
	int64_t blob_next;	/* next blob id of this attempt */
	enum store_sync sync;
	bool is_no_space;	/* a file operation of this attempt failed
				 * with ENOSPC or EDQUOT */
};

/* The mailbox columns the writer needs. */
struct mb_row {
	int64_t id;
	int64_t account;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t modseq;	/* HIGHESTMODSEQ */
};

/* ---- Small helpers --------------------------------------------------- */

static sqlite3_stmt *
stmt(struct batch *b, enum sq_stmt id)
{
	return sq_stmt(b->c, id);
}

/* Steps a statement that returns no rows, then resets it. Returns
 * SQLITE_DONE or the error code (logged unless a constraint). */
static int
step_done(struct batch *b, sqlite3_stmt *s, const char *what)
{
	int rc;

	if (s == NULL)
		return SQLITE_ERROR;
	rc = sqlite3_step(s);
	sq_reset(s);
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT)
		sq_err(b->c, rc, what);
	return rc;
}

static bool
is_unique_violation(int rc)
{
	return rc == SQLITE_CONSTRAINT_UNIQUE ||
	    rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

static void
bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

/* Reads a mailbox by (account, name) or, when name is NULL, by id.
 * Returns 1, 0 (no such mailbox) or -1. */
static int
mb_get(struct batch *b, int64_t account, const char *name, int64_t id,
    struct mb_row *mb_out)
{
	sqlite3_stmt *s = stmt(b, name != NULL ? SQ_MAILBOX_ROW :
	    SQ_MAILBOX_BY_ID);
	int rc;

	if (s == NULL)
		return -1;
	if (name != NULL) {
		sqlite3_bind_int64(s, 1, account);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(s, 1, id);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (name != NULL) {
			mb_out->id = sqlite3_column_int64(s, 0);
			mb_out->account = account;
		} else {
			mb_out->id = id;
			mb_out->account = sqlite3_column_int64(s, 0);
		}
		mb_out->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		mb_out->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		mb_out->modseq = (uint64_t)sqlite3_column_int64(s, 3);
	}
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	sq_err(b->c, rc, "mailbox_get");
	return -1;
}

static int
mb_bump(struct batch *b, const struct mb_row *mb)
{
	sqlite3_stmt *s = stmt(b, SQ_MAILBOX_BUMP);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, mb->id);
	sqlite3_bind_int64(s, 2, mb->uidnext);
	sqlite3_bind_int64(s, 3, (int64_t)mb->modseq);
	return step_done(b, s, "mailbox_bump") == SQLITE_DONE ? 0 : -1;
}

/* Looks up one row by a text or integer key; returns 1 with the first
 * column in *id_out, 0, or -1. */
static int
lookup_id(struct batch *b, enum sq_stmt id, const char *key, int64_t ikey,
    int64_t *id_out)
{
	sqlite3_stmt *s = stmt(b, id);
	int rc;

	if (s == NULL)
		return -1;
	if (key != NULL)
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, ikey);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && id_out != NULL)
		*id_out = sqlite3_column_int64(s, 0);
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	sq_err(b->c, rc, "lookup");
	return -1;
}

/* ---- Directory ------------------------------------------------------- */

static enum store_err
domain_add(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, SQ_DOMAIN_INSERT);
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_text(s, 1, req->s1, -1, SQLITE_STATIC);
	rc = step_done(b, s, "domain_add");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	return rc == SQLITE_DONE ? STORE_OK : STORE_TEMP;
}

static enum store_err
domain_del(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s;
	int64_t id, accounts = 0;
	int found = lookup_id(b, SQ_DOMAIN_GET, req->s1, 0, &id);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if (lookup_id(b, SQ_DOMAIN_ACCOUNTS, NULL, id, &accounts) < 0)
		return STORE_TEMP;
	if (accounts > 0)
		return STORE_NOT_ALLOWED;
	if ((s = stmt(b, SQ_DOMAIN_ALIASES_DELETE)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	if (step_done(b, s, "domain_aliases_delete") != SQLITE_DONE)
		return STORE_TEMP;
	if ((s = stmt(b, SQ_DOMAIN_DELETE)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	return step_done(b, s, "domain_delete") == SQLITE_DONE ? STORE_OK :
	    STORE_TEMP;
}

static enum store_err
catchall_set(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s;
	int64_t id;
	int found = lookup_id(b, SQ_DOMAIN_GET, req->s1, 0, &id);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((s = stmt(b, SQ_CATCHALL_SET)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	bind_text_or_null(s, 2, req->s2);
	return step_done(b, s, "catchall_set") == SQLITE_DONE ? STORE_OK :
	    STORE_TEMP;
}

static enum store_err
subscription_set(struct batch *b, int64_t account, const char *name,
    bool is_on)
{
	sqlite3_stmt *s = stmt(b, is_on ? SQ_SUBSCRIPTION_ADD :
	    SQ_SUBSCRIPTION_DEL);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	return step_done(b, s, "subscription_set") == SQLITE_DONE ?
	    STORE_OK : STORE_TEMP;
}

/* Creates one mailbox with a UIDVALIDITY never handed out before. */
static enum store_err
mailbox_insert(struct batch *b, int64_t account, const char *name,
    enum store_special special, bool is_subscribed)
{
	sqlite3_stmt *s;
	int64_t uidvalidity;
	int rc;

	/* RFC 9051 §2.3.1.1: a name reused after DELETE must get a new
	 * UIDVALIDITY; one counter for the whole store never repeats. */
	if (sq_meta_get(b->c, "uidvalidity_next", &uidvalidity) != SQLITE_OK)
		return sq_err(b->c, SQLITE_ERROR, "uidvalidity_get");
	if (uidvalidity < 1 || uidvalidity > UINT32_MAX)
		panic("store: UIDVALIDITY counter out of range: %" PRId64,
		    uidvalidity);
	if (sq_meta_set(b->c, "uidvalidity_next", uidvalidity + 1) !=
	    SQLITE_OK)
		return sq_err(b->c, SQLITE_ERROR, "uidvalidity_set");
	if ((s = stmt(b, SQ_MAILBOX_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, uidvalidity);
	sqlite3_bind_int(s, 4, (int)special);
	sqlite3_bind_int(s, 5, is_subscribed);
	rc = step_done(b, s, "mailbox_insert");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	if (rc != SQLITE_DONE)
		return STORE_TEMP;
	return is_subscribed ? subscription_set(b, account, name, true) :
	    STORE_OK;
}

static void
account_bind(sqlite3_stmt *s, const struct store_account *a)
{
	bind_text_or_null(s, 3, a->display_name);
	bind_text_or_null(s, 4, a->password_hash);
	bind_text_or_null(s, 5, a->scram_sha256);
	sqlite3_bind_int64(s, 6, (int64_t)a->quota_bytes);
	sqlite3_bind_int64(s, 7, (int64_t)a->quota_messages);
	sqlite3_bind_int(s, 8, a->is_enabled);
	sqlite3_bind_int(s, 9, (int)a->imap);
	sqlite3_bind_int(s, 10, (int)a->pop3);
	sqlite3_bind_int(s, 11, (int)a->submission);
	bind_text_or_null(s, 12, a->forward_to);
	sqlite3_bind_int(s, 13, a->is_forward_kept);
	sqlite3_bind_int64(s, 14, a->pop3_retention_days);
	sqlite3_bind_int64(s, 15, a->locked_until);
}

static enum store_err
account_add(struct batch *b, struct store_req *req)
{
	const struct store_account *a = req->account_in;
	const char *domain = strrchr(a->address, '@') + 1;
	sqlite3_stmt *s;
	int64_t domain_id, id;
	int rc, found = lookup_id(b, SQ_DOMAIN_GET, domain, 0, &domain_id);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((s = stmt(b, SQ_ACCOUNT_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_text(s, 1, a->address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, domain_id);
	account_bind(s, a);
	sqlite3_bind_int64(s, 16, a->created != 0 ? a->created :
	    (int64_t)time(NULL));
	rc = step_done(b, s, "account_add");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	if (rc != SQLITE_DONE)
		return STORE_TEMP;
	id = sqlite3_last_insert_rowid(b->c->db);
	for (size_t i = 0; i < ARRAY_LEN(default_mailboxes); i++) {
		enum store_err err = mailbox_insert(b, id,
		    default_mailboxes[i].name, default_mailboxes[i].special,
		    true);

		if (err != STORE_OK)
			return err == STORE_EXISTS ? STORE_TEMP : err;
	}
	req->id_out = id;
	return STORE_OK;
}

static enum store_err
account_del(struct batch *b, struct store_req *req)
{
	static const enum sq_stmt steps[] = {
		SQ_ACCOUNT_MESSAGES_DELETE, SQ_ACCOUNT_EXPUNGED_DELETE,
		SQ_ACCOUNT_MAILBOXES_DELETE, SQ_ACCOUNT_APP_PASSWORDS_DELETE,
		SQ_ACCOUNT_SUBSCRIPTIONS_DELETE,
		SQ_ACCOUNT_MIGRATE_MAP_DELETE, SQ_ACCOUNT_MIGRATE_FOLDERS_DELETE,
		SQ_ACCOUNT_DELETE,
	};
	int64_t id;
	int found = lookup_id(b, SQ_ACCOUNT_BY_ADDRESS, req->s1, 0, &id);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	/* The triggers on messages drop the blobs' references; blobs left
	 * with none go to blob_gc. */
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		sqlite3_stmt *s = stmt(b, steps[i]);

		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, id);
		if (step_done(b, s, "account_del") != SQLITE_DONE)
			return STORE_TEMP;
	}
	return STORE_OK;
}

static enum store_err
account_update(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, SQ_ACCOUNT_UPDATE);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->account_in->id);
	account_bind(s, req->account_in);
	if (step_done(b, s, "account_update") != SQLITE_DONE)
		return STORE_TEMP;
	return sqlite3_changes(b->c->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

/* Whether following aliases from target reaches address. Returns 1, 0,
 * or -1. */
static int
alias_reaches(struct batch *b, const char *target, const char *address)
{
	char **todo = xmalloc(sizeof(*todo));
	size_t ntodo = 1, nseen = 0, cap = 1;
	char **seen = NULL;
	int result = 0;

	todo[0] = xstrdup(target);
	while (ntodo > 0 && result == 0) {
		char *addr = todo[--ntodo];
		sqlite3_stmt *s;
		bool is_seen = false;
		int rc;

		for (size_t i = 0; i < nseen && !is_seen; i++)
			is_seen = strcmp(seen[i], addr) == 0;
		if (is_seen || strcmp(addr, address) == 0 ||
		    nseen >= ALIAS_WALK_MAX) {
			if (!is_seen && strcmp(addr, address) == 0)
				result = 1;
			free(addr);
			continue;
		}
		seen = xrealloc(seen, (nseen + 1) * sizeof(*seen));
		seen[nseen++] = addr;
		if ((s = stmt(b, SQ_ALIAS_TARGETS)) == NULL) {
			result = -1;
			break;
		}
		sqlite3_bind_text(s, 1, addr, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (ntodo == cap) {
				cap *= 2;
				todo = xrealloc(todo, cap * sizeof(*todo));
			}
			todo[ntodo++] = sq_text(s, 0);
		}
		sq_reset(s);
		if (rc != SQLITE_DONE) {
			sq_err(b->c, rc, "alias_walk");
			result = -1;
		}
	}
	while (ntodo > 0)
		free(todo[--ntodo]);
	free(todo);
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	return result;
}

static enum store_err
alias_add(struct batch *b, struct store_req *req)
{
	const char *domain = strrchr(req->s1, '@') + 1;
	sqlite3_stmt *s;
	int64_t domain_id;
	int rc, found = lookup_id(b, SQ_DOMAIN_GET, domain, 0, &domain_id);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	/* A loop would bounce mail between aliases until the depth limit
	 * cuts it; refuse it here, where the operator sees why. */
	rc = alias_reaches(b, req->s2, req->s1);
	if (rc != 0)
		return rc > 0 ? STORE_NOT_ALLOWED : STORE_TEMP;
	if ((s = stmt(b, SQ_ALIAS_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_text(s, 1, req->s1, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, req->s2, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, domain_id);
	rc = step_done(b, s, "alias_add");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	return rc == SQLITE_DONE ? STORE_OK : STORE_TEMP;
}

static enum store_err
alias_del(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, req->s2 != NULL ? SQ_ALIAS_DELETE_ONE :
	    SQ_ALIAS_DELETE_ALL);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_text(s, 1, req->s1, -1, SQLITE_STATIC);
	if (req->s2 != NULL)
		sqlite3_bind_text(s, 2, req->s2, -1, SQLITE_STATIC);
	if (step_done(b, s, "alias_del") != SQLITE_DONE)
		return STORE_TEMP;
	return sqlite3_changes(b->c->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

/* ---- App passwords --------------------------------------------------- */

static enum store_err
app_password_add(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s;
	int rc, found = lookup_id(b, SQ_ACCOUNT_EXISTS, NULL, req->account,
	    NULL);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((s = stmt(b, SQ_APP_PASSWORD_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->account);
	sqlite3_bind_text(s, 2, req->s1, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, req->s2, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, req->protocols);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	rc = step_done(b, s, "app_password_add");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	return rc == SQLITE_DONE ? STORE_OK : STORE_TEMP;
}

static enum store_err
app_password_revoke(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, SQ_APP_PASSWORD_REVOKE);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->account);
	sqlite3_bind_text(s, 2, req->s1, -1, SQLITE_STATIC);
	if (step_done(b, s, "app_password_revoke") != SQLITE_DONE)
		return STORE_TEMP;
	return sqlite3_changes(b->c->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static enum store_err
app_password_touch(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, SQ_APP_PASSWORD_TOUCH);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->id);
	sqlite3_bind_int64(s, 2, req->when);
	bind_text_or_null(s, 3, req->s1);
	if (step_done(b, s, "app_password_touch") != SQLITE_DONE)
		return STORE_TEMP;
	return sqlite3_changes(b->c->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

/* store_recent.c: the first UID no session has claimed as \Recent. It
 * only grows (max), so requests may land in any order; a mailbox gone or
 * made again under the same id (another UIDVALIDITY) is left alone. */
static enum store_err
recent_set(struct batch *b, struct store_req *req)
{
	sqlite3_stmt *s = stmt(b, SQ_RECENT_SET);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->id);
	sqlite3_bind_int64(s, 2, req->uidvalidity);
	sqlite3_bind_int64(s, 3, req->recent_uid);
	if (step_done(b, s, "recent_set") != SQLITE_DONE)
		return STORE_TEMP;
	return STORE_OK;
}

/* ---- Mailboxes ------------------------------------------------------- */

/* Creates every missing ancestor of name (RFC 9051 §6.3.4). */
static enum store_err
parents_make(struct batch *b, int64_t account, const char *name)
{
	char *parent = store_name_parent(name);
	enum store_err err = STORE_OK;
	struct mb_row mb;
	int found;

	if (parent == NULL)
		return STORE_OK;
	found = mb_get(b, account, parent, 0, &mb);
	if (found < 0)
		err = STORE_TEMP;
	else if (found == 0 && (err = parents_make(b, account, parent)) ==
	    STORE_OK)
		err = mailbox_insert(b, account, parent, STORE_SPECIAL_NONE,
		    false);
	free(parent);
	return err;
}

/* A new mailbox starts with its parent's ACL (RFC 4314 leaves this to
 * the server): a child made in a shared folder is shared alike. */
static enum store_err
acl_inherit(struct batch *b, int64_t account, const char *name)
{
	char *parent = store_name_parent(name);
	sqlite3_stmt *s;
	int rc;

	if (parent == NULL)
		return STORE_OK;
	if ((s = stmt(b, SQ_ACL_INHERIT)) == NULL) {
		free(parent);
		return STORE_TEMP;
	}
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, parent, -1, SQLITE_STATIC);
	rc = step_done(b, s, "acl_inherit");
	free(parent);
	return rc == SQLITE_DONE ? STORE_OK : STORE_TEMP;
}

/* Another user asking (req->actor): the rights RFC 4314 §4 asks, read
 * again here, in the transaction that makes the change. need_parent on
 * the parent of name (which must exist: nothing is made above it for
 * another user), or need on name itself. */
static enum store_err
actor_check(struct batch *b, struct store_req *req, const char *name,
    uint32_t need, bool is_parent)
{
	struct mb_row mb;
	char *parent = NULL;
	enum store_err err;
	int found;

	if (req->actor == 0)
		return STORE_OK;
	if (is_parent && (parent = store_name_parent(name)) == NULL)
		return STORE_NOT_ALLOWED;	/* a top level */
	found = mb_get(b, req->account, is_parent ? parent : name, 0, &mb);
	free(parent);
	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	err = sq_acl_check(b->c, req->actor, mb.id, need);
	return err;
}

static enum store_err
mailbox_create(struct batch *b, struct store_req *req)
{
	struct mb_row mb;
	enum store_err err;
	int found = lookup_id(b, SQ_ACCOUNT_EXISTS, NULL, req->account, NULL);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((err = actor_check(b, req, req->s1, STORE_ACL_CREATE, true)) !=
	    STORE_OK)
		return err;
	found = mb_get(b, req->account, req->s1, 0, &mb);
	if (found != 0)
		return found > 0 ? STORE_EXISTS : STORE_TEMP;
	if ((err = parents_make(b, req->account, req->s1)) != STORE_OK)
		return err;
	err = mailbox_insert(b, req->account, req->s1, req->special, false);
	if (err == STORE_OK)
		err = acl_inherit(b, req->account, req->s1);
	if (err == STORE_OK)
		store_req_event(req, req->account, 0, STORE_EVENT_CREATE,
		    req->s1, NULL);
	return err;
}

static bool
is_child_of(const char *name, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(name, parent, n) == 0 && name[n] == '/';
}

static enum store_err
mailbox_rename_one(struct batch *b, int64_t id, const char *name)
{
	sqlite3_stmt *s = stmt(b, SQ_MAILBOX_RENAME);
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	if (strlen(name) > STORE_MAILBOX_NAME_MAX)
		return STORE_INVALID;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	rc = step_done(b, s, "mailbox_rename");
	if (is_unique_violation(rc))
		return STORE_EXISTS;
	return rc == SQLITE_DONE ? STORE_OK : STORE_TEMP;
}

/* RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox of
 * the new name and leaves INBOX empty; its children stay where they are.
 * The messages keep their UIDs: the new mailbox has a new UIDVALIDITY.
 * For INBOX they are expunged, with a new MODSEQ (RFC 7162 §3.2.10). */
static enum store_err
inbox_rename(struct batch *b, struct store_req *req, struct mb_row *inbox)
{
	struct mb_row dst;
	sqlite3_stmt *s;
	enum store_err err;

	if ((err = parents_make(b, req->account, req->s2)) != STORE_OK ||
	    (err = mailbox_insert(b, req->account, req->s2,
	    STORE_SPECIAL_NONE, false)) != STORE_OK)
		return err;
	if (mb_get(b, req->account, req->s2, 0, &dst) <= 0)
		return STORE_TEMP;
	inbox->modseq++;
	if ((s = stmt(b, SQ_MAILBOX_EXPUNGE_ALL)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, inbox->id);
	sqlite3_bind_int64(s, 2, (int64_t)inbox->modseq);
	if (step_done(b, s, "inbox_expunge") != SQLITE_DONE)
		return STORE_TEMP;
	if ((s = stmt(b, SQ_MAILBOX_MOVE_ALL)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, inbox->id);
	sqlite3_bind_int64(s, 2, dst.id);
	if (step_done(b, s, "inbox_move") != SQLITE_DONE)
		return STORE_TEMP;
	dst.uidnext = inbox->uidnext;
	dst.modseq = inbox->modseq;
	if (mb_bump(b, inbox) < 0 || mb_bump(b, &dst) < 0)
		return STORE_TEMP;
	store_req_touch(req, inbox->id);
	store_req_touch(req, dst.id);
	store_req_event(req, req->account, inbox->id, STORE_EVENT_EXPUNGE,
	    NULL, NULL);
	store_req_event(req, req->account, dst.id, STORE_EVENT_NEW, NULL,
	    NULL);
	store_req_event(req, req->account, 0, STORE_EVENT_CREATE, req->s2,
	    NULL);
	return STORE_OK;
}

/* The subscriptions of from and its children follow them to to. */
static enum store_err
subscriptions_rename(struct batch *b, int64_t account, const char *from,
    const char *to)
{
	sqlite3_stmt *s = stmt(b, SQ_SUBSCRIPTION_RENAME);

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
	return step_done(b, s, "subscriptions_rename") == SQLITE_DONE ?
	    STORE_OK : STORE_TEMP;
}

static enum store_err
mailbox_rename(struct batch *b, struct store_req *req)
{
	const char *from = req->s1, *to = req->s2;
	struct mb_row mb, other;
	enum store_err err = STORE_OK;
	sqlite3_stmt *s;
	size_t nchildren = 0;
	int64_t *ids = NULL;
	char **names = NULL;
	int found, rc;

	found = mb_get(b, req->account, from, 0, &mb);
	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((err = actor_check(b, req, from, STORE_ACL_DELETE, false)) !=
	    STORE_OK || (err = actor_check(b, req, to, STORE_ACL_CREATE,
	    true)) != STORE_OK)
		return err;
	if (is_store_name_inbox(to) || strcmp(from, to) == 0)
		return STORE_EXISTS;
	found = mb_get(b, req->account, to, 0, &other);
	if (found != 0)
		return found > 0 ? STORE_EXISTS : STORE_TEMP;
	if (is_child_of(to, from))
		return STORE_NOT_ALLOWED;
	if (is_store_name_inbox(from))
		return inbox_rename(b, req, &mb);

	/* Collect the children first: renaming while stepping would
	 * change what the statement walks. */
	if ((s = stmt(b, SQ_MAILBOX_CHILDREN)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, req->account);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ids = xrealloc(ids, (nchildren + 1) * sizeof(*ids));
		names = xrealloc(names, (nchildren + 1) * sizeof(*names));
		ids[nchildren] = sqlite3_column_int64(s, 0);
		names[nchildren++] = xasprintf("%s%s", to,
		    (const char *)sqlite3_column_text(s, 1) + strlen(from));
	}
	sq_reset(s);
	if (rc != SQLITE_DONE)
		err = sq_err(b->c, rc, "mailbox_children");
	if (err == STORE_OK)
		err = parents_make(b, req->account, to);
	if (err == STORE_OK)
		err = mailbox_rename_one(b, mb.id, to);
	if (err == STORE_OK)
		store_req_event(req, req->account, 0, STORE_EVENT_RENAME, to,
		    from);
	for (size_t i = 0; i < nchildren; i++) {
		if (err == STORE_OK)
			err = mailbox_rename_one(b, ids[i], names[i]);
		if (err == STORE_OK) {
			/* RFC 5465 §5.4: one LIST per mailbox renamed. */
			char *old = xasprintf("%s%s", from,
			    names[i] + strlen(to));

			store_req_event(req, req->account, 0,
			    STORE_EVENT_RENAME, names[i], old);
			free(old);
		}
		free(names[i]);
	}
	free(names);
	free(ids);
	if (err == STORE_OK)
		err = subscriptions_rename(b, req->account, from, to);
	if (err == STORE_OK)
		store_req_touch(req, mb.id);
	return err;
}

static enum store_err
mailbox_delete(struct batch *b, struct store_req *req)
{
	static const enum sq_stmt steps[] = {
		SQ_MAILBOX_MESSAGES_DELETE, SQ_MAILBOX_EXPUNGED_DELETE,
		SQ_MAILBOX_DELETE,
	};
	struct mb_row mb;
	enum store_err err;
	int found;

	if (is_store_name_inbox(req->s1))
		return STORE_NOT_ALLOWED;
	found = mb_get(b, req->account, req->s1, 0, &mb);
	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	if ((err = actor_check(b, req, req->s1, STORE_ACL_DELETE, false)) !=
	    STORE_OK)
		return err;
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		sqlite3_stmt *s = stmt(b, steps[i]);

		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, mb.id);
		if (step_done(b, s, "mailbox_delete") != SQLITE_DONE)
			return STORE_TEMP;
	}
	store_req_touch(req, mb.id);
	store_req_event(req, req->account, 0, STORE_EVENT_DELETE, req->s1,
	    NULL);
	return STORE_OK;
}

static enum store_err
mailbox_subscribe(struct batch *b, struct store_req *req)
{
	struct mb_row mb;
	enum store_err err;
	int found = mb_get(b, req->account, req->s1, 0, &mb);

	if (found < 0)
		return STORE_TEMP;
	if (req->is_on && found == 0 && !req->is_name_only)
		return STORE_NOT_FOUND;
	err = subscription_set(b, req->account, req->s1, req->is_on);
	if (err == STORE_OK && !req->is_on && found == 0 &&
	    sqlite3_changes(b->c->db) == 0)
		return STORE_NOT_FOUND;
	if (err == STORE_OK)
		store_req_event(req, req->account, 0, req->is_on ?
		    STORE_EVENT_SUBSCRIBE : STORE_EVENT_UNSUBSCRIBE, req->s1,
		    NULL);
	return err;
}

/* ---- Messages -------------------------------------------------------- */

/* Whether adding bytes and count would pass the account's quota.
 * Returns STORE_OK, STORE_OVER_QUOTA, STORE_NOT_FOUND or STORE_TEMP. */
static enum store_err
quota_check(struct batch *b, int64_t account, uint64_t bytes,
    uint64_t count)
{
	sqlite3_stmt *s = stmt(b, SQ_ACCOUNT_USAGE);
	enum store_err err;
	int rc;

	if (s == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, account);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		uint64_t used = (uint64_t)sqlite3_column_int64(s, 0);
		uint64_t nused = (uint64_t)sqlite3_column_int64(s, 1);
		uint64_t qbytes = (uint64_t)sqlite3_column_int64(s, 2);
		uint64_t qmsgs = (uint64_t)sqlite3_column_int64(s, 3);

		/* RFC 9208 §5: STORAGE counts octets, MESSAGE messages;
		 * 0 here means no limit. */
		err = (qbytes != 0 && used + bytes > qbytes) ||
		    (qmsgs != 0 && nused + count > qmsgs) ?
		    STORE_OVER_QUOTA : STORE_OK;
	} else {
		err = rc == SQLITE_DONE ? STORE_NOT_FOUND :
		    sq_err(b->c, rc, "quota_check");
	}
	sq_reset(s);
	return err;
}

static char *
parts_format(const struct store_structure *s)
{
	size_t len = 0, cap = 64;
	char *out = xmalloc(cap);

	out[0] = '\0';
	for (size_t i = 0; i < s->nparts; i++) {
		const struct store_part *p = &s->parts[i];
		int n;

		for (;;) {
			n = snprintf(out + len, cap - len, "%s %" PRIu64 " %"
			    PRIu64 " %" PRIu64 "\n", p->section, p->header_off,
			    p->body_off, p->end_off);
			if (n >= 0 && (size_t)n < cap - len)
				break;
			cap = cap * 2 + (size_t)n;
			out = xrealloc(out, cap);
		}
		len += (size_t)n;
	}
	return out;
}

/* Inserts the blob of d (size, structure, text) under its id. */
static enum store_err
blob_insert(struct batch *b, struct store_delivery *d)
{
	const struct store_parsed *p = &d->parsed;
	int64_t id = d->blob;
	sqlite3_stmt *s;
	char *parts;
	int rc;

	if ((s = stmt(b, SQ_BLOB_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, (int64_t)d->size);
	if (step_done(b, s, "blob_insert") != SQLITE_DONE)
		return STORE_TEMP;
	if ((s = stmt(b, SQ_STRUCTURE_INSERT)) == NULL)
		return STORE_TEMP;
	parts = parts_format(&p->structure);
	sqlite3_bind_int64(s, 1, id);
	bind_text_or_null(s, 2, p->structure.envelope);
	bind_text_or_null(s, 3, p->structure.bodystructure);
	bind_text_or_null(s, 4, p->structure.body);
	sqlite3_bind_text(s, 5, parts, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, p->structure.date);
	bind_text_or_null(s, 7, p->subject);
	bind_text_or_null(s, 8, p->from);
	bind_text_or_null(s, 9, p->to);
	bind_text_or_null(s, 10, p->cc);
	bind_text_or_null(s, 11, p->bcc);
	bind_text_or_null(s, 12, p->message_id);
	bind_text_or_null(s, 13, p->in_reply_to);
	/* '' when absent: NULL marks rows from before schema 9. */
	sqlite3_bind_text(s, 14, p->references != NULL ? p->references : "",
	    -1, SQLITE_STATIC);
	bind_text_or_null(s, 15, p->structure.preview);
	if (p->structure.date >= 0)
		sqlite3_bind_int64(s, 16, p->date_local);
	else
		sqlite3_bind_null(s, 16);
	rc = step_done(b, s, "structure_insert");
	free(parts);
	if (rc != SQLITE_DONE)
		return STORE_TEMP;
	if ((s = stmt(b, SQ_TEXT_INSERT)) == NULL)
		return STORE_TEMP;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, p->headers_text != NULL ? p->headers_text :
	    "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, p->body_text != NULL ? p->body_text : "", -1,
	    SQLITE_STATIC);
	if (step_done(b, s, "text_insert") != SQLITE_DONE)
		return STORE_TEMP;
	d->is_blob_used = true;
	return STORE_OK;
}

/* One message row as the writer reads it. */
struct msg_row {
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags;
	char *keywords;
	int64_t internal_date;
	uint64_t size;
	int64_t blob;
};

/* One new message row. */
struct msg_new {
	int64_t mailbox;
	uint32_t uid;
	int64_t blob;
	uint64_t modseq;
	uint32_t flags;
	const char *keywords;
	int64_t internal_date;
	uint64_t size;
	int64_t retrieved;
};

static int
msg_insert(struct batch *b, const struct msg_new *m)
{
	sqlite3_stmt *s = stmt(b, SQ_MSG_INSERT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, m->mailbox);
	sqlite3_bind_int64(s, 2, m->uid);
	sqlite3_bind_int64(s, 3, m->blob);
	sqlite3_bind_int64(s, 4, (int64_t)m->modseq);
	sqlite3_bind_int64(s, 5, m->flags);
	bind_text_or_null(s, 6, m->keywords);
	sqlite3_bind_int64(s, 7, m->internal_date);
	sqlite3_bind_int64(s, 8, (int64_t)m->size);
	sqlite3_bind_int64(s, 9, m->retrieved);
	/* RFC 8514: every insert is a save into the mailbox (delivery,
	 * APPEND, COPY, MOVE), so the save date is now. */
	sqlite3_bind_int64(s, 10, (int64_t)time(NULL));
	return step_done(b, s, "msg_insert") == SQLITE_DONE ? 0 : -1;
}

/* Queues the body for each external recipient of d (RFC 5321 §4.5.4:
 * the queue retries from next_attempt on), and the success reports asked
 * for (store_delivery_notify) when every local recipient took it. */
static enum store_err
delivery_queue(struct batch *b, struct store_delivery *d, int64_t now,
    bool is_all_local)
{
	if (!d->is_blob_used && blob_insert(b, d) != STORE_OK)
		return STORE_TEMP;
	for (size_t i = 0; i < d->nqueued; i++) {
		const struct store_queued *q = &d->queued[i];
		sqlite3_stmt *s;

		if (q->is_report && !is_all_local)
			continue;
		if ((s = stmt(b, SQ_QUEUE_INSERT)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, d->blob);
		sqlite3_bind_text(s, 2, q->sender, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, q->rcpt, -1, SQLITE_STATIC);
		bind_text_or_null(s, 4, q->dsn_envelope);
		bind_text_or_null(s, 5, q->dsn_rcpt);
		sqlite3_bind_int64(s, 6, now);
		sqlite3_bind_int64(s, 7, d->is_authenticated);
		sqlite3_bind_int64(s, 8, q->is_report);
		if (step_done(b, s, "queue_insert") != SQLITE_DONE)
			return STORE_TEMP;
	}
	return STORE_OK;
}

/* The account's \Junk mailbox for store_delivery_set_junk(): the first
 * with the special use, else "Junk", else a new "Junk" marked \Junk
 * (subscribed, as the default mailboxes are). Returns 1, 0 (no such
 * account) or -1. */
static int
mb_junk(struct batch *b, struct store_req *req, int64_t account,
    struct mb_row *mb_out)
{
	sqlite3_stmt *s = stmt(b, SQ_MAILBOX_SPECIAL_ROW);
	int rc, found;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, account);
	sqlite3_bind_int(s, 2, (int)STORE_SPECIAL_JUNK);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		mb_out->id = sqlite3_column_int64(s, 0);
		mb_out->account = account;
		mb_out->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		mb_out->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		mb_out->modseq = (uint64_t)sqlite3_column_int64(s, 3);
	}
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE) {
		sq_err(b->c, rc, "mailbox_special");
		return -1;
	}
	found = mb_get(b, account, "Junk", 0, mb_out);
	if (found != 0)
		return found;
	found = lookup_id(b, SQ_ACCOUNT_EXISTS, NULL, account, NULL);
	if (found <= 0)
		return found;
	if (mailbox_insert(b, account, "Junk", STORE_SPECIAL_JUNK, true) !=
	    STORE_OK)
		return -1;
	store_req_event(req, account, 0, STORE_EVENT_CREATE, "Junk", NULL);
	return mb_get(b, account, "Junk", 0, mb_out);
}

/* Each recipient succeeds or fails alone (not found, over quota), unless
 * the delivery is atomic: then the first failure fails it whole (the
 * caller, attempt_run, gives every result that error). A database error
 * always fails the whole delivery. */
static enum store_err
delivery_one(struct batch *b, struct store_req *req,
    struct store_delivery *d, struct store_delivery_result *dres)
{
	int64_t now = (int64_t)time(NULL);
	bool is_all_local = true;

	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct store_rcpt *r = &d->rcpts[i];
		struct store_delivery_result *res = &dres[i];
		struct msg_new m;
		struct mb_row mb;
		enum store_err err;
		int found;

		if (r->is_invalid) {
			res->err = STORE_INVALID;
			if (d->is_atomic)
				return res->err;
			is_all_local = false;
			continue;
		}
		if (d->is_junk && r->mailbox == NULL)
			found = mb_junk(b, req, r->account, &mb);
		else
			found = mb_get(b, r->account, r->mailbox != NULL ?
			    r->mailbox : "INBOX", 0, &mb);
		if (found < 0)
			return STORE_TEMP;
		if (found == 0) {
			res->err = STORE_NOT_FOUND;
			if (d->is_atomic)
				return res->err;
			is_all_local = false;
			continue;
		}
		err = quota_check(b, r->account, d->size, 1);
		if (err == STORE_TEMP || err == STORE_NO_SPACE)
			return err;
		if (err == STORE_OK && mb.uidnext == UINT32_MAX)
			err = STORE_NOT_ALLOWED;	/* UIDs exhausted */
		if (err != STORE_OK) {
			res->err = err;
			if (d->is_atomic)
				return err;
			is_all_local = false;
			continue;
		}
		if (!d->is_blob_used && blob_insert(b, d) != STORE_OK)
			return STORE_TEMP;
		/* RFC 7162 §3.1.1: every new message gets a new MODSEQ,
		 * and HIGHESTMODSEQ moves with it. */
		m = (struct msg_new){
			.mailbox = mb.id,
			.uid = mb.uidnext,
			.blob = d->blob,
			.modseq = mb.modseq + 1,
			.flags = r->flags,
			.keywords = r->keywords,
			.internal_date = r->internal_date != 0 ?
			    r->internal_date : now,
			.size = d->size,
		};
		if (msg_insert(b, &m) < 0)
			return STORE_TEMP;
		mb.uidnext++;
		mb.modseq++;
		if (mb_bump(b, &mb) < 0)
			return STORE_TEMP;
		res->err = STORE_OK;
		res->mailbox = mb.id;
		res->uidvalidity = mb.uidvalidity;
		res->uid = m.uid;
		store_req_touch(req, mb.id);
		store_req_event(req, mb.account, mb.id, STORE_EVENT_NEW, NULL,
		    NULL);
		/* postern migrate's map entry goes with the message, in the
		 * same transaction (store_delivery_migrate). */
		if (d->migrate != NULL && i == 0 &&
		    (err = sq_migrate_apply(b->c, d->migrate, mb.id, m.uid)) !=
		    STORE_OK)
			return err;
	}
	if (d->nqueued > 0) {
		if (delivery_queue(b, d, now, is_all_local) != STORE_OK)
			return STORE_TEMP;
		dres[d->nrcpts].err = STORE_OK;
	}
	return STORE_OK;
}

static int msg_get(struct batch *b, int64_t mailbox, uint32_t uid,
    struct msg_row *m_out);
static enum store_err expunge_uids(struct batch *b, struct store_req *req,
    struct mb_row *mb, const uint32_t *uids, size_t n);

/* IMAP REPLACE (store_delivery_replace): the old message goes first, so
 * that the quota check of the new one counts without it; a message gone
 * already fails the delivery (STORE_NOT_FOUND). */
static enum store_err
replace_expunge(struct batch *b, struct store_req *req,
    const struct store_delivery *d)
{
	struct msg_row old;
	struct mb_row mb;
	int found = mb_get(b, 0, NULL, d->replace_mailbox, &mb);

	if (found <= 0)
		return found < 0 ? STORE_TEMP : STORE_NOT_FOUND;
	found = msg_get(b, mb.id, d->replace_uid, &old);
	if (found <= 0)
		return found < 0 ? STORE_TEMP : STORE_NOT_FOUND;
	free(old.keywords);
	return expunge_uids(b, req, &mb, &d->replace_uid, 1);
}

/* The deliveries of the request, in order (store_delivery_chain): all or
 * none when there are several, since each is then atomic. */
static enum store_err
delivery(struct batch *b, struct store_req *req)
{
	struct store_delivery_result *dres = req->dres;

	for (struct store_delivery *d = req->d; d != NULL; d = d->next) {
		enum store_err err;

		if (d->replace_mailbox != 0 &&
		    (err = replace_expunge(b, req, d)) != STORE_OK)
			return err;
		if ((err = delivery_one(b, req, d, dres)) != STORE_OK)
			return err;
		dres += d->nrcpts + (d->nqueued > 0);
	}
	return STORE_OK;
}

/* Returns 1 with *m_out filled (free m_out->keywords), 0, or -1. */
static int
msg_get(struct batch *b, int64_t mailbox, uint32_t uid, struct msg_row *m_out)
{
	sqlite3_stmt *s = stmt(b, SQ_MSG_GET);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, mailbox);
	sqlite3_bind_int64(s, 2, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		m_out->uid = uid;
		m_out->modseq = (uint64_t)sqlite3_column_int64(s, 1);
		m_out->flags = (uint32_t)sqlite3_column_int64(s, 2);
		m_out->keywords = sq_text(s, 3);
		m_out->internal_date = sqlite3_column_int64(s, 4);
		m_out->size = (uint64_t)sqlite3_column_int64(s, 5);
		m_out->blob = sqlite3_column_int64(s, 6);
	}
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	sq_err(b->c, rc, "msg_get");
	return -1;
}

static enum store_err
change_flags(struct batch *b, struct store_req *req, struct mb_row *mb)
{
	const struct store_change *c = &req->change;
	struct store_change_result *r = &req->cres;
	uint64_t modseq = 0;

	for (size_t i = 0; i < c->nuids; i++) {
		struct msg_row m;
		uint32_t flags;
		char *keywords;
		sqlite3_stmt *s;
		int rc, found = msg_get(b, c->mailbox, c->uids[i], &m);

		if (found <= 0) {
			if (found < 0)
				return STORE_TEMP;
			continue;
		}
		/* RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE
		 * is left alone and reported. */
		if (c->unchangedsince != 0 && m.modseq > c->unchangedsince) {
			r->modified = xrealloc(r->modified,
			    (r->nmodified + 1) * sizeof(*r->modified));
			r->modified[r->nmodified++] = m.uid;
			free(m.keywords);
			continue;
		}
		flags = c->mode == STORE_FLAGS_ADD ? m.flags | c->flags :
		    c->mode == STORE_FLAGS_REMOVE ? m.flags & ~c->flags :
		    c->flags;
		keywords = store_keywords_apply(m.keywords, c->keywords,
		    c->mode);
		if (flags == m.flags && is_store_keywords_equal(keywords,
		    m.keywords)) {
			free(keywords);
			free(m.keywords);
			continue;
		}
		/* RFC 7162 §3.1: one new MODSEQ for the whole command. */
		if (modseq == 0)
			modseq = mb->modseq + 1;
		s = stmt(b, SQ_MSG_SET_FLAGS);
		if (s != NULL) {
			sqlite3_bind_int64(s, 1, c->mailbox);
			sqlite3_bind_int64(s, 2, m.uid);
			sqlite3_bind_int64(s, 3, flags);
			bind_text_or_null(s, 4, keywords);
			sqlite3_bind_int64(s, 5, (int64_t)modseq);
		}
		rc = step_done(b, s, "msg_set_flags");
		free(keywords);
		free(m.keywords);
		if (rc != SQLITE_DONE)
			return STORE_TEMP;
	}
	if (modseq != 0) {
		mb->modseq = modseq;
		if (mb_bump(b, mb) < 0)
			return STORE_TEMP;
		store_req_touch(req, mb->id);
		store_req_event(req, mb->account, mb->id, STORE_EVENT_FLAGS,
		    NULL, NULL);
	}
	r->modseq = mb->modseq;
	return STORE_OK;
}

/* Expunges the listed UIDs of mb (those that exist), recording them for
 * QRESYNC under one new MODSEQ (RFC 7162 §3.2.10). */
static enum store_err
expunge_uids(struct batch *b, struct store_req *req, struct mb_row *mb,
    const uint32_t *uids, size_t n)
{
	uint64_t modseq = mb->modseq + 1;
	bool is_any = false;

	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s = stmt(b, SQ_MSG_DELETE);

		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, mb->id);
		sqlite3_bind_int64(s, 2, uids[i]);
		if (step_done(b, s, "msg_delete") != SQLITE_DONE)
			return STORE_TEMP;
		if (sqlite3_changes(b->c->db) == 0)
			continue;
		if ((s = stmt(b, SQ_EXPUNGED_INSERT)) == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, mb->id);
		sqlite3_bind_int64(s, 2, uids[i]);
		sqlite3_bind_int64(s, 3, (int64_t)modseq);
		if (step_done(b, s, "expunged_insert") != SQLITE_DONE)
			return STORE_TEMP;
		is_any = true;
	}
	if (is_any) {
		mb->modseq = modseq;
		if (mb_bump(b, mb) < 0)
			return STORE_TEMP;
		store_req_event(req, mb->account, mb->id, STORE_EVENT_EXPUNGE,
		    NULL, NULL);
		store_req_touch(req, mb->id);
	}
	return STORE_OK;
}

static void
msg_rows_free(struct msg_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].keywords);
	free(rows);
}

/* COPY (RFC 9051 §6.4.7) and MOVE (RFC 6851): new UIDs in the
 * destination, flags and internal date kept, the body shared; MOVE then
 * expunges the sources. Reported as COPYUID (RFC 4315 §3). */
static enum store_err
change_copy(struct batch *b, struct store_req *req, struct mb_row *src)
{
	const struct store_change *c = &req->change;
	struct store_change_result *r = &req->cres;
	struct msg_row *rows = NULL;
	struct mb_row dst;
	uint64_t bytes = 0;
	size_t n = 0;
	enum store_err err = STORE_OK;
	bool is_move = c->kind == STORE_CHANGE_MOVE;
	int found = mb_get(b, 0, NULL, c->dst_mailbox, &dst);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	rows = xcalloc(c->nuids > 0 ? c->nuids : 1, sizeof(*rows));
	for (size_t i = 0; i < c->nuids; i++) {
		found = msg_get(b, c->mailbox, c->uids[i], &rows[n]);
		if (found < 0) {
			msg_rows_free(rows, n);
			return STORE_TEMP;
		}
		if (found > 0)
			bytes += rows[n++].size;
	}
	r->dst_uidvalidity = dst.uidvalidity;
	r->modseq = src->modseq;
	if (n == 0) {
		msg_rows_free(rows, n);
		return STORE_OK;
	}
	/* A MOVE within one account does not change what it uses. */
	if (!is_move || dst.account != src->account)
		err = quota_check(b, dst.account, bytes, n);
	if (err == STORE_OK && (uint64_t)dst.uidnext + n > UINT32_MAX)
		err = STORE_NOT_ALLOWED;	/* UIDs exhausted */
	if (err != STORE_OK) {
		msg_rows_free(rows, n);
		return err;
	}
	r->src_uids = xmalloc(n * sizeof(*r->src_uids));
	r->dst_uids = xmalloc(n * sizeof(*r->dst_uids));
	dst.modseq++;
	for (size_t i = 0; i < n && err == STORE_OK; i++) {
		struct msg_new m = {
			.mailbox = dst.id,
			.uid = dst.uidnext++,
			.blob = rows[i].blob,
			.modseq = dst.modseq,
			.flags = rows[i].flags,
			.keywords = rows[i].keywords,
			.internal_date = rows[i].internal_date,
			.size = rows[i].size,
		};

		/* The insert comes before any delete, so the blob's
		 * reference count never touches zero on a MOVE. */
		if (msg_insert(b, &m) < 0)
			err = STORE_TEMP;
		r->src_uids[i] = rows[i].uid;
		r->dst_uids[i] = m.uid;
	}
	r->ncopied = n;
	if (err == STORE_OK && mb_bump(b, &dst) < 0)
		err = STORE_TEMP;
	if (err == STORE_OK) {
		store_req_touch(req, dst.id);
		store_req_event(req, dst.account, dst.id, STORE_EVENT_NEW,
		    NULL, NULL);
	}
	if (err == STORE_OK && is_move) {
		/* Within one mailbox the source is the destination just
		 * bumped. */
		if (src->id == dst.id)
			*src = dst;
		err = expunge_uids(b, req, src, r->src_uids, n);
		r->modseq = src->modseq;
	}
	msg_rows_free(rows, n);
	return err;
}

static enum store_err
change_retrieved(struct batch *b, struct store_req *req, struct mb_row *mb)
{
	const struct store_change *c = &req->change;
	int64_t now = (int64_t)time(NULL);

	for (size_t i = 0; i < c->nuids; i++) {
		sqlite3_stmt *s = stmt(b, SQ_MSG_RETRIEVED);

		if (s == NULL)
			return STORE_TEMP;
		sqlite3_bind_int64(s, 1, mb->id);
		sqlite3_bind_int64(s, 2, c->uids[i]);
		sqlite3_bind_int64(s, 3, now);
		if (step_done(b, s, "msg_retrieved") != SQLITE_DONE)
			return STORE_TEMP;
	}
	req->cres.modseq = mb->modseq;
	return STORE_OK;
}

static enum store_err
change(struct batch *b, struct store_req *req)
{
	const struct store_change *c = &req->change;
	struct mb_row mb;
	enum store_err err;
	int found = mb_get(b, 0, NULL, c->mailbox, &mb);

	if (found <= 0)
		return found == 0 ? STORE_NOT_FOUND : STORE_TEMP;
	switch (c->kind) {
	case STORE_CHANGE_FLAGS:
		return change_flags(b, req, &mb);
	case STORE_CHANGE_EXPUNGE:
		err = expunge_uids(b, req, &mb, c->uids, c->nuids);
		req->cres.modseq = mb.modseq;
		return err;
	case STORE_CHANGE_COPY:
	case STORE_CHANGE_MOVE:
		return change_copy(b, req, &mb);
	case STORE_CHANGE_RETRIEVED:
		return change_retrieved(b, req, &mb);
	}
	panic("store: change kind %d", (int)c->kind);
}

static enum store_err
apply(struct batch *b, struct store_req *req)
{
	switch (req->kind) {
	case STORE_REQ_DELIVERY:
		return delivery(b, req);
	case STORE_REQ_CHANGE:
		return change(b, req);
	case STORE_REQ_DOMAIN_ADD:
		return domain_add(b, req);
	case STORE_REQ_DOMAIN_DEL:
		return domain_del(b, req);
	case STORE_REQ_CATCHALL_SET:
		return catchall_set(b, req);
	case STORE_REQ_ACCOUNT_ADD:
		return account_add(b, req);
	case STORE_REQ_ACCOUNT_DEL:
		return account_del(b, req);
	case STORE_REQ_ACCOUNT_UPDATE:
		return account_update(b, req);
	case STORE_REQ_ALIAS_ADD:
		return alias_add(b, req);
	case STORE_REQ_ALIAS_DEL:
		return alias_del(b, req);
	case STORE_REQ_MAILBOX_CREATE:
		return mailbox_create(b, req);
	case STORE_REQ_MAILBOX_RENAME:
		return mailbox_rename(b, req);
	case STORE_REQ_MAILBOX_DELETE:
		return mailbox_delete(b, req);
	case STORE_REQ_MAILBOX_SUBSCRIBE:
		return mailbox_subscribe(b, req);
	case STORE_REQ_APP_PASSWORD_ADD:
		return app_password_add(b, req);
	case STORE_REQ_APP_PASSWORD_REVOKE:
		return app_password_revoke(b, req);
	case STORE_REQ_APP_PASSWORD_TOUCH:
		return app_password_touch(b, req);
	case STORE_REQ_QUEUE:
		return sq_queue_apply(b->c, req);
	case STORE_REQ_MIGRATE:
		return sq_migrate_apply(b->c, req->mop, 0, 0);
	case STORE_REQ_ACL:
		return sq_acl_apply(b->c, req);
	case STORE_REQ_METADATA:
		return sq_metadata_apply(b->c, req);
	case STORE_REQ_RECENT_SET:
		return recent_set(b, req);
	case STORE_REQ_CHECK:
		break;
	}
	panic("store: request kind %d in a batch", (int)req->kind);
}

/* ---- The batch ------------------------------------------------------- */

/* Forgets what an attempt at req produced. */
static void
req_reset(struct store_req *req)
{
	req->err = STORE_OK;
	req->id_out = 0;
	req->ntouched = 0;
	store_req_events_clear(req);
	for (size_t i = 0; i < req->ndres; i++)
		memset(&req->dres[i], 0, sizeof(req->dres[i]));
	for (size_t i = 0; i < req->ndres; i++)
		req->dres[i].err = STORE_TEMP;
	if (req->kind == STORE_REQ_CHANGE)
		store_change_result_deinit(&req->cres);
	for (struct store_delivery *d = req->d; d != NULL; d = d->next)
		d->is_blob_used = false;
}

/* Why the attempt failed, for the requests it fails: the disk was full
 * (a file operation or SQLite said so), or something else. */
static enum store_err
attempt_err(const struct batch *b)
{
	return b->is_no_space || b->c->is_full ? STORE_NO_SPACE : STORE_TEMP;
}

/* Fails req for good with err: it leaves the batch, its body file
 * goes. */
static void
req_fail(struct store_req *req, enum store_err err, bool *is_out)
{
	req_reset(req);
	req->err = err;
	for (size_t i = 0; i < req->ndres; i++)
		req->dres[i].err = err;
	*is_out = true;
	if (req->d != NULL)
		store_delivery_discard(req->d);
}

/* Takes back the names an attempt gave the files, so that the next
 * attempt starts from the same state (and its ids may differ). */
static void
files_unplace(struct store_req **reqs, size_t n, bool *is_out)
{
	for (size_t i = 0; i < n; i++) {
		for (struct store_delivery *d = reqs[i]->d; d != NULL;
		    d = d->next) {
			if (d->placed == NULL)
				continue;
			if (store_delivery_unlink(d) < 0) {
				log_error(NULL, "store.unplace path=%s "
				    "error=\"%s\"", d->placed, strerror(errno));
				req_fail(reqs[i], STORE_TEMP, &is_out[i]);
				break;
			}
		}
	}
}

/* Names each new body file DATA/blobs/xx/<id>. Returns the index of a
 * request whose file could not be named, or n. A new directory entry may
 * need a block (ext4): ENOSPC here is a full disk too. */
static size_t
files_place(struct batch *b, struct store_req **reqs, size_t n,
    const bool *is_out)
{
	for (size_t i = 0; i < n; i++) {
		if (is_out[i])
			continue;
		for (struct store_delivery *d = reqs[i]->d; d != NULL;
		    d = d->next) {
			char name[32];

			if (d->blob == 0)
				continue;
			sq_blob_name(d->blob, name, sizeof(name));
			if (store_delivery_link(d, b->sq->blobs_fd, name) < 0) {
				int errnum = errno;

				log_error(NULL, "store.place blob=%" PRId64
				    " error=\"%s\"", d->blob,
				    strerror(errnum));
				if (store_err_errno(errnum) == STORE_NO_SPACE)
					b->is_no_space = true;
				return i;
			}
			d->placed = xasprintf("%s/blobs/%s", b->st->data_dir,
			    name);
		}
	}
	return n;
}

/*
 * Makes the placed files durable: their data, their size and their new
 * directory entries. Two ways, measured on the 2-core test VM (ext4 on
 * virtio; a micro-benchmark of 64 4 KiB files per round, then
 * bench/store/bench_store.c, bench=sync, 64 writers of 4 KiB):
 *
 *   fdatasync(2) each file, then fsync(2) each directory touched:
 *	~0.65 ms per file, ~1,500 files/s at best; 1,770 deliveries/s;
 *   syncfs(2) once: one flush of the whole file system for the whole
 *	batch, 3,000-6,000 files/s at 64 files per batch; 4,050
 *	deliveries/s in the same run.
 *
 * (Starting writeback early with sync_file_range at submit made callers
 * block and was slower.) So STORE_SYNC_AUTO uses syncfs once a batch has
 * more than one file, and fdatasync for a lone file: there they cost the
 * same, and fdatasync does not wait for other programs' dirty data on the
 * file system. syncfs flushes everything on DATA's file system; give the
 * store its own file system where other writers are heavy. Returns 0, or
 * -1 with errno set.
 */
static int
sync_files(struct batch *b, struct store_req **reqs, size_t n,
    const bool *is_out)
{
	bool dirs[256] = { false };
	size_t nfiles = 0;
	enum store_sync how = b->sync;

	for (size_t i = 0; i < n; i++) {
		if (is_out[i])
			continue;
		for (struct store_delivery *d = reqs[i]->d; d != NULL;
		    d = d->next)
			nfiles += d->placed != NULL;
	}
	if (nfiles == 0)
		return 0;
	if (how == STORE_SYNC_AUTO)
		how = nfiles > 1 ? STORE_SYNC_SYNCFS : STORE_SYNC_FILES;
	if (how == STORE_SYNC_SYNCFS) {
		if (syncfs(b->sq->data_fd) < 0) {
			int errnum = errno;

			log_error(NULL, "store.sync how=syncfs error=\"%s\"",
			    strerror(errnum));
			errno = errnum;
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++)
	for (struct store_delivery *d = is_out[i] ? NULL : reqs[i]->d;
	    d != NULL; d = d->next) {
		if (d->placed == NULL)
			continue;
		if (fdatasync(d->fd) < 0) {
			int errnum = errno;

			log_error(NULL, "store.sync how=fdatasync path=%s "
			    "error=\"%s\"", d->placed, strerror(errnum));
			errno = errnum;
			return -1;
		}
		dirs[(d->blob >> 8) & 0xff] = true;
	}
	for (unsigned i = 0; i < 256; i++) {
		char name[8];
		int fd, rc;

		if (!dirs[i])
			continue;
		snprintf(name, sizeof(name), "%02x", i);
		fd = openat(b->sq->blobs_fd, name, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
		rc = fd < 0 ? -1 : fsync(fd);
		if (rc < 0) {
			int errnum = errno;

			log_error(NULL, "store.sync how=fsync dir=%s "
			    "error=\"%s\"", name, strerror(errnum));
			if (fd >= 0)
				close(fd);
			errno = errnum;
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* One sync_files call handed to the syncer thread. */
struct sq_sync_job {
	struct batch *b;
	struct store_req **reqs;
	size_t n;
	const bool *is_out;
	int rc;
	int errnum;		/* errno of a failed sync */
	bool is_done;
};

static void *
syncer_main(void *arg)
{
	struct sq_state *sq = arg;

	pthread_mutex_lock(&sq->sync_lock);
	for (;;) {
		struct sq_sync_job *job;
		int rc;

		while (sq->sync_job == NULL && !sq->is_sync_stopping)
			pthread_cond_wait(&sq->sync_cond, &sq->sync_lock);
		if (sq->sync_job == NULL)
			break;
		job = sq->sync_job;
		pthread_mutex_unlock(&sq->sync_lock);
		rc = sync_files(job->b, job->reqs, job->n, job->is_out);
		pthread_mutex_lock(&sq->sync_lock);
		job->rc = rc;
		job->errnum = rc < 0 ? errno : 0;
		job->is_done = true;
		sq->sync_job = NULL;
		pthread_cond_broadcast(&sq->sync_cond);
	}
	pthread_mutex_unlock(&sq->sync_lock);
	return NULL;
}

int
sq_syncer_start(struct sq_state *sq, char *err, size_t errlen)
{
	int rc = pthread_create(&sq->sync_thread, NULL, syncer_main, sq);

	if (rc != 0) {
		snprintf(err, errlen, "cannot start the syncer: %s",
		    strerror(rc));
		return -1;
	}
	sq->is_sync_started = true;
	return 0;
}

void
sq_syncer_stop(struct sq_state *sq)
{
	if (!sq->is_sync_started)
		return;
	pthread_mutex_lock(&sq->sync_lock);
	sq->is_sync_stopping = true;
	pthread_cond_broadcast(&sq->sync_cond);
	pthread_mutex_unlock(&sq->sync_lock);
	pthread_join(sq->sync_thread, NULL);
	sq->is_sync_started = false;
}

/* Hands the batch's files to the syncer; the writer goes on with the
 * SQL meanwhile. The fields sync_files reads (is_out, placed, fd, blob)
 * do not change until sync_wait. */
static void
sync_start(struct batch *b, struct sq_sync_job *job, struct store_req **reqs,
    size_t n, const bool *is_out)
{
	*job = (struct sq_sync_job){ .b = b, .reqs = reqs, .n = n,
	    .is_out = is_out };
	pthread_mutex_lock(&b->sq->sync_lock);
	b->sq->sync_job = job;
	pthread_cond_broadcast(&b->sq->sync_cond);
	pthread_mutex_unlock(&b->sq->sync_lock);
}

/* Waits for the syncer; returns what sync_files returned. */
static int
sync_wait(struct batch *b, struct sq_sync_job *job)
{
	pthread_mutex_lock(&b->sq->sync_lock);
	while (!job->is_done)
		pthread_cond_wait(&b->sq->sync_cond, &b->sq->sync_lock);
	pthread_mutex_unlock(&b->sq->sync_lock);
	return job->rc;
}

/* Drops the blob_gc rows of files unlinked after the last commit. */
static int
gc_rows_drop(struct batch *b)
{
	for (size_t i = 0; i < b->sq->ngc_done; i++) {
		sqlite3_stmt *s = stmt(b, SQ_GC_DELETE);

		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, b->sq->gc_done[i]);
		if (step_done(b, s, "gc_delete") != SQLITE_DONE)
			return -1;
	}
	return 0;
}

/* After a commit: unlinks the files of blobs that lost their last
 * message; their rows go with the next transaction. */
static void
gc_files_unlink(struct batch *b)
{
	struct sq_state *sq = b->sq;
	sqlite3_stmt *s = stmt(b, SQ_GC_LIST);
	bool is_locked = false;
	int rc;

	sq->ngc_done = 0;
	if (s == NULL)
		return;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		char name[32];

		/* A backup copying a snapshot that may still name this
		 * blob holds the lock: the file and its row stay until a
		 * commit after the backup is done. */
		if (!is_locked && !(is_locked = sq_gc_trylock(sq))) {
			rc = SQLITE_DONE;
			break;
		}
		sq_blob_name(id, name, sizeof(name));
		if (unlinkat(sq->blobs_fd, name, 0) < 0 && errno != ENOENT) {
			log_error(NULL, "store.gc blob=%" PRId64
			    " error=\"%s\"", id, strerror(errno));
			continue;
		}
		if (sq->ngc_done == sq->gc_done_cap) {
			sq->gc_done_cap = sq->gc_done_cap ?
			    sq->gc_done_cap * 2 : 64;
			sq->gc_done = xrealloc(sq->gc_done,
			    sq->gc_done_cap * sizeof(*sq->gc_done));
		}
		sq->gc_done[sq->ngc_done++] = id;
	}
	if (is_locked)
		sq_gc_unlock(sq);
	sq_reset(s);
	if (rc != SQLITE_DONE)
		sq_err(b->c, rc, "gc_list");
}

static void
txn_rollback(struct batch *b)
{
	if (!sqlite3_get_autocommit(b->c->db))
		sq_exec(b->c, SQ_ROLLBACK);
}

enum attempt {
	ATTEMPT_DONE,
	ATTEMPT_RETRY,
};

/* Fails every request still in the batch. */
static enum attempt
attempt_fail_all(struct batch *b, struct store_req **reqs, size_t n,
    bool *is_out)
{
	enum store_err err = attempt_err(b);

	txn_rollback(b);
	for (size_t i = 0; i < n; i++) {
		if (!is_out[i])
			req_fail(reqs[i], err, &is_out[i]);
	}
	return ATTEMPT_DONE;
}

/* Whether a file of the delivery chain d was given its name. */
static bool
is_delivery_placed(const struct store_delivery *d)
{
	for (; d != NULL; d = d->next)
		if (d->placed != NULL)
			return true;
	return false;
}

/* Gives every live delivery the next blob id, in order. */
static void
ids_assign(struct batch *b, struct store_req **reqs, size_t n,
    const bool *is_out)
{
	for (size_t i = 0; i < n; i++) {
		if (is_out[i])
			continue;
		for (struct store_delivery *d = reqs[i]->d; d != NULL;
		    d = d->next) {
			d->blob = b->blob_next++;
			d->is_blob_used = false;
		}
	}
}

/* Unlinks the bodies no recipient took (all failed, or their request
 * did), before the COMMIT makes their ids part of the past. */
static void
files_unused_drop(struct store_req **reqs, size_t n, const bool *is_out)
{
	for (size_t i = 0; i < n; i++)
	for (struct store_delivery *d = is_out[i] ? NULL : reqs[i]->d;
	    d != NULL; d = d->next) {
		if (d->placed == NULL || d->is_blob_used)
			continue;
		if (store_delivery_unlink(d) < 0)
			log_error(NULL, "store.unplace path=%s error=\"%s\"",
			    d->placed, strerror(errno));
	}
}

static enum attempt
attempt_run(struct batch *b, struct store_req **reqs, size_t n,
    bool *is_out)
{
	struct sq_sync_job job;
	size_t bad;
	int64_t blob_next;
	int rc;

	b->is_no_space = false;
	b->c->is_full = false;
	if ((rc = sq_exec(b->c, SQ_BEGIN_WRITE)) != SQLITE_DONE) {
		sq_err(b->c, rc, "begin");
		return attempt_fail_all(b, reqs, n, is_out);
	}
	if (gc_rows_drop(b) < 0 ||
	    sq_meta_get(b->c, "blob_next", &blob_next) != SQLITE_OK)
		return attempt_fail_all(b, reqs, n, is_out);
	b->blob_next = blob_next;
	/* Ids first, so that the files get their names and go to disk
	 * while the SQL runs. */
	ids_assign(b, reqs, n, is_out);
	bad = files_place(b, reqs, n, is_out);
	if (bad < n) {
		req_fail(reqs[bad], attempt_err(b), &is_out[bad]);
		txn_rollback(b);
		files_unplace(reqs, n, is_out);
		return ATTEMPT_RETRY;
	}
	sync_start(b, &job, reqs, n, is_out);
	for (size_t i = 0; i < n; i++) {
		enum store_err err;

		if (is_out[i])
			continue;
		req_reset(reqs[i]);
		if (sq_exec(b->c, SQ_SAVEPOINT) != SQLITE_DONE) {
			sync_wait(b, &job);
			return attempt_fail_all(b, reqs, n, is_out);
		}
		err = apply(b, reqs[i]);
		if (err == STORE_TEMP)
			err = attempt_err(b);
		if (sqlite3_get_autocommit(b->c->db)) {
			/* SQLite gave up the whole transaction (disk full,
			 * I/O error): this request goes, the others are
			 * run again. */
			sync_wait(b, &job);
			req_fail(reqs[i], attempt_err(b), &is_out[i]);
			files_unplace(reqs, n, is_out);
			return ATTEMPT_RETRY;
		}
		if (err != STORE_OK) {
			if (sq_exec(b->c, SQ_ROLLBACK_TO) != SQLITE_DONE) {
				sync_wait(b, &job);
				return attempt_fail_all(b, reqs, n, is_out);
			}
			req_reset(reqs[i]);
			/* An atomic delivery failed whole: every result
			 * says why (store.h). */
			for (size_t k = 0; k < reqs[i]->ndres; k++)
				reqs[i]->dres[k].err = err;
		}
		if (sq_exec(b->c, SQ_RELEASE) != SQLITE_DONE) {
			sync_wait(b, &job);
			return attempt_fail_all(b, reqs, n, is_out);
		}
		reqs[i]->err = err;
	}
	if (sync_wait(b, &job) < 0) {
		/* Which file failed is unknown: every delivery with a file
		 * fails, the other requests run again. */
		enum store_err err;

		if (store_err_errno(job.errnum) == STORE_NO_SPACE)
			b->is_no_space = true;
		err = attempt_err(b);
		txn_rollback(b);
		for (size_t i = 0; i < n; i++) {
			if (!is_out[i] && reqs[i]->d != NULL &&
			    is_delivery_placed(reqs[i]->d))
				req_fail(reqs[i], err, &is_out[i]);
		}
		return ATTEMPT_RETRY;
	}
	files_unused_drop(reqs, n, is_out);
	if (b->blob_next != blob_next &&
	    sq_meta_set(b->c, "blob_next", b->blob_next) != SQLITE_OK)
		return attempt_fail_all(b, reqs, n, is_out);
	if ((rc = sq_exec(b->c, SQ_COMMIT)) != SQLITE_DONE) {
		sq_err(b->c, rc, "commit");
		return attempt_fail_all(b, reqs, n, is_out);
	}
	/* Durable. */
	for (size_t i = 0; i < n; i++) {
		struct store_req *req = reqs[i];

		if (is_out[i])
			continue;
		for (struct store_delivery *d = req->d; d != NULL;
		    d = d->next)
			if (d->placed != NULL)
				d->is_kept = true;
		if (req->kind == STORE_REQ_CHANGE && req->err == STORE_OK &&
		    req->cres.nmodified > 0)
			req->err = STORE_MODIFIED;
	}
	gc_files_unlink(b);
	return ATTEMPT_DONE;
}

void
sq_batch_run(struct store *st, struct store_req **reqs, size_t n)
{
	struct batch b = {
		.st = st,
		.sq = sq_state(st),
		.c = sq_state(st)->writer,
	};
	bool *is_out;

	if (n == 1 && reqs[0]->kind == STORE_REQ_CHECK) {
		reqs[0]->problems = sq_check(st, reqs[0]->is_on,
		    reqs[0]->report, reqs[0]->report_arg);
		reqs[0]->err = reqs[0]->problems < 0 ? STORE_TEMP : STORE_OK;
		return;
	}
	pthread_mutex_lock(&st->lock);
	b.sync = st->sync;
	pthread_mutex_unlock(&st->lock);
	is_out = xcalloc(n, sizeof(*is_out));
	/* Each retry removes one request at least, so this ends. */
	while (attempt_run(&b, reqs, n, is_out) == ATTEMPT_RETRY)
		;
	free(is_out);
}

/* ---- Background indexing and recovery -------------------------------- */

bool
sq_idle(struct store *st)
{
	struct sq_state *sq = sq_state(st);
	struct batch b = { .st = st, .sq = sq, .c = sq->writer };
	sqlite3_stmt *s;
	int64_t upto, last = 0;
	int n = 0, rc;

	if (!sq->has_fts)
		return false;
	if (sq_exec(b.c, SQ_BEGIN_WRITE) != SQLITE_DONE ||
	    sq_meta_get(b.c, "fts_upto", &upto) != SQLITE_OK ||
	    (s = stmt(&b, SQ_FTS_PENDING)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, upto);
	sqlite3_bind_int(s, 2, FTS_CHUNK);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		sqlite3_stmt *ins = stmt(&b, SQ_FTS_INSERT);

		last = sqlite3_column_int64(s, 0);
		if (ins == NULL)
			break;
		sqlite3_bind_int64(ins, 1, last);
		sqlite3_bind_value(ins, 2, sqlite3_column_value(s, 1));
		sqlite3_bind_value(ins, 3, sqlite3_column_value(s, 2));
		if (step_done(&b, ins, "fts_insert") != SQLITE_DONE) {
			rc = SQLITE_ERROR;
			break;
		}
		n++;
	}
	sq_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	if (n > 0 && sq_meta_set(b.c, "fts_upto", last) != SQLITE_OK)
		goto fail;
	if (sq_exec(b.c, SQ_COMMIT) != SQLITE_DONE)
		goto fail;
	return n == FTS_CHUNK;
fail:
	sq_err(b.c, SQLITE_ERROR, "fts_index");
	txn_rollback(&b);
	return false;
}

int
sq_gc_recover(struct store *st)
{
	struct sq_state *sq = sq_state(st);
	struct batch b = { .st = st, .sq = sq, .c = sq->writer };

	if (sq_exec(b.c, SQ_BEGIN_WRITE) != SQLITE_DONE)
		return -1;
	gc_files_unlink(&b);
	if (gc_rows_drop(&b) < 0 || sq_exec(b.c, SQ_COMMIT) != SQLITE_DONE) {
		txn_rollback(&b);
		return -1;
	}
	if (sq->ngc_done > 0)
		log_info(NULL, "store.recover gc_files=%zu", sq->ngc_done);
	sq->ngc_done = 0;
	return 0;
}

int
sq_orphans_recover(struct store *st)
{
	struct sq_state *sq = sq_state(st);
	struct batch b = { .st = st, .sq = sq, .c = sq->writer };
	int64_t id, misses = 0, removed = 0;

	/* Under the write lock: no other process is between naming its
	 * files and its COMMIT, so every file at or past blob_next is an
	 * orphan. */
	if (sq_exec(b.c, SQ_BEGIN_WRITE) != SQLITE_DONE)
		return -1;
	if (sq_meta_get(b.c, "blob_next", &id) != SQLITE_OK) {
		txn_rollback(&b);
		return -1;
	}
	for (; misses < ORPHAN_PROBE; id++) {
		char name[32];

		sq_blob_name(id, name, sizeof(name));
		if (unlinkat(sq->blobs_fd, name, 0) == 0) {
			removed++;
			misses = 0;
		} else {
			misses++;
		}
	}
	txn_rollback(&b);
	if (removed > 0)
		log_info(NULL, "store.recover orphan_files=%" PRId64, removed);
	return 0;
}
