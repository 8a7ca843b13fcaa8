/*
 * store_sqlite_check: store_check() for the embedded backend. Runs on the
 * writer thread as a batch of its own, holding the write lock, so that no
 * batch is between renaming its files and committing: every file under
 * DATA/blobs without a blob row is then truly an orphan.
 *
 * Checks, in order: SQLite's quick_check; every blob has its file, of its
 * size; every file belongs to a blob; reference counts; the counters of
 * mailboxes (messages, unseen, size) and accounts (bytes, messages);
 * UIDNEXT above every UID and HIGHESTMODSEQ at or above every MODSEQ
 * (RFC 9051 §2.3.1.1, RFC 7162 §3.1.1); structure and text rows without a
 * blob. A repair unlinks orphan files, expunges messages whose body is
 * gone (so clients stop asking for it), and rewrites counters and
 * numbers; numbers only ever move up.
 */
#include "store/store_sqlite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

struct check {
	struct store *st;
	struct sq_conn *c;
	bool is_repair;
	void (*report)(void *arg, const char *line);
	void *arg;
	int problems;
	bool is_failed;		/* the database could not be read */
	int64_t *blobs;		/* every blob id, ascending */
	size_t nblobs;
	int64_t *missing;	/* blobs whose file is gone */
	size_t nmissing;
};

/* Column i of s as the type the formats below expect. */
static int64_t
col(sqlite3_stmt *s, int i)
{
	return sqlite3_column_int64(s, i);
}

static void
found(struct check *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
found(struct check *k, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	k->problems++;
	log_warn(NULL, "store.check problem=\"%s\" repair=%s", line,
	    k->is_repair ? "yes" : "no");
	if (k->report != NULL)
		k->report(k->arg, line);
}

/* Runs sql (no parameters) and calls row for each result row. */
static void
each_row(struct check *k, const char *sql,
    void (*row)(struct check *k, sqlite3_stmt *s))
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(k->c->db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			row(k, s);
	}
	if (rc != SQLITE_DONE) {
		sq_err(k->c, rc, "check");
		k->is_failed = true;
	}
	sqlite3_finalize(s);
}

/* Runs a repair statement with up to three integer parameters. */
static void
repair(struct check *k, const char *sql, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(k->c->db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, a);
		sqlite3_bind_int64(s, 2, b);
		sqlite3_bind_int64(s, 3, c);
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_DONE) {
		sq_err(k->c, rc, "check_repair");
		k->is_failed = true;
	}
	sqlite3_finalize(s);
}

static void
row_quick_check(struct check *k, sqlite3_stmt *s)
{
	const char *text = (const char *)sqlite3_column_text(s, 0);

	if (text != NULL && strcmp(text, "ok") != 0)
		found(k, "database: %s", text);
}

static void
row_blob(struct check *k, sqlite3_stmt *s)
{
	int64_t id = col(s, 0);
	int64_t size = col(s, 1);
	struct sq_state *sq = sq_state(k->st);
	struct stat sb;
	char name[32];

	if (k->nblobs % 1024 == 0)
		k->blobs = xrealloc(k->blobs,
		    (k->nblobs + 1024) * sizeof(*k->blobs));
	k->blobs[k->nblobs++] = id;
	sq_blob_name(id, name, sizeof(name));
	if (fstatat(sq->blobs_fd, name, &sb, 0) < 0) {
		found(k, "blob %" PRId64 ": body file blobs/%s is missing%s",
		    id, name, k->is_repair ? "; its messages are expunged" :
		    "");
		k->missing = xrealloc(k->missing,
		    (k->nmissing + 1) * sizeof(*k->missing));
		k->missing[k->nmissing++] = id;
	} else if (sb.st_size != size) {
		/* Not repairable: the bytes are gone. */
		found(k, "blob %" PRId64 ": body file is %lld bytes, "
		    "expected %" PRId64, id, (long long)sb.st_size, size);
	}
}

static bool
is_blob(const struct check *k, int64_t id)
{
	size_t lo = 0, hi = k->nblobs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->blobs[mid] == id)
			return true;
		if (k->blobs[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void
orphans_check(struct check *k)
{
	struct sq_state *sq = sq_state(k->st);
	/* A file without a row may still be named by the snapshot of a
	 * running backup (its row went after the snapshot): while one
	 * holds the GC lock, orphans are reported and kept. */
	bool is_unlinking = k->is_repair && sq_gc_trylock(sq);

	for (unsigned i = 0; i < 256; i++) {
		char dir[8];
		struct dirent *de;
		DIR *dp;
		int fd;

		snprintf(dir, sizeof(dir), "%02x", i);
		fd = openat(sq->blobs_fd, dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
		if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
			found(k, "directory blobs/%s cannot be read: %s", dir,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(dp)) != NULL) {
			char *end;
			long long id;

			if (de->d_name[0] == '.')
				continue;
			errno = 0;
			id = strtoll(de->d_name, &end, 10);
			if (*end != '\0' || errno != 0 || id <= 0 ||
			    ((id >> 8) & 0xff) != (long long)i) {
				found(k, "blobs/%s/%s: not a body file", dir,
				    de->d_name);
				continue;
			}
			if (is_blob(k, id))
				continue;
			found(k, "blobs/%s/%s: orphan body file%s", dir,
			    de->d_name, is_unlinking ? ", removed" :
			    k->is_repair ? ", kept while a backup runs" : "");
			if (is_unlinking && unlinkat(dirfd(dp), de->d_name,
			    0) < 0)
				log_error(NULL, "store.check unlink=%s/%s "
				    "error=\"%s\"", dir, de->d_name,
				    strerror(errno));
		}
		closedir(dp);
	}
	if (is_unlinking)
		sq_gc_unlock(sq);
}

static void
row_refcount(struct check *k, sqlite3_stmt *s)
{
	int64_t id = col(s, 0);

	found(k, "blob %" PRId64 ": %" PRId64 " references counted, %"
	    PRId64 " messages and queue entries", id, col(s, 1), col(s, 2));
	if (k->is_repair)
		repair(k, "UPDATE blobs SET refcount = ?2 WHERE id = ?1", id,
		    col(s, 2), 0);
}

static void
row_mailbox_counts(struct check *k, sqlite3_stmt *s)
{
	int64_t id = col(s, 0);

	found(k, "mailbox %" PRId64 ": counts messages=%" PRId64 " unseen=%"
	    PRId64 " size=%" PRId64 ", actual %" PRId64 "/%" PRId64 "/%"
	    PRId64, id, col(s, 1),
	    col(s, 2), col(s, 3),
	    col(s, 4), col(s, 5),
	    col(s, 6));
	if (k->is_repair)
		repair(k, "UPDATE mailboxes SET messages = (SELECT count(*) "
		    "FROM messages WHERE mailbox = ?1), unseen = (SELECT "
		    "count(*) FROM messages WHERE mailbox = ?1 AND "
		    "flags & 1 = 0), size = (SELECT coalesce(sum(size), 0) "
		    "FROM messages WHERE mailbox = ?1) WHERE id = ?1", id, 0,
		    0);
}

static void
row_account_usage(struct check *k, sqlite3_stmt *s)
{
	int64_t id = col(s, 0);

	found(k, "account %" PRId64 ": usage %" PRId64 " bytes/%" PRId64
	    " messages, actual %" PRId64 "/%" PRId64, id,
	    col(s, 1), col(s, 2),
	    col(s, 3), col(s, 4));
	if (k->is_repair)
		repair(k, "UPDATE accounts SET used_bytes = ?2, "
		    "used_messages = ?3 WHERE id = ?1", id,
		    col(s, 3), col(s, 4));
}

static void
row_numbers(struct check *k, sqlite3_stmt *s)
{
	int64_t id = col(s, 0);
	int64_t uidnext = col(s, 1);
	int64_t modseq = col(s, 2);
	int64_t max_uid = col(s, 3);
	int64_t max_modseq = col(s, 4);

	found(k, "mailbox %" PRId64 ": UIDNEXT %" PRId64 " HIGHESTMODSEQ %"
	    PRId64 " behind UID %" PRId64 " MODSEQ %" PRId64, id, uidnext,
	    modseq, max_uid, max_modseq);
	if (k->is_repair)
		repair(k, "UPDATE mailboxes SET uidnext = max(uidnext, ?2), "
		    "highestmodseq = max(highestmodseq, ?3) WHERE id = ?1", id,
		    max_uid + 1, max_modseq);
}

static void
row_stray(struct check *k, sqlite3_stmt *s)
{
	const char *table = (const char *)sqlite3_column_text(s, 0);
	int64_t id = col(s, 1);

	found(k, "%s row for blob %" PRId64 " without a blob", table, id);
	if (k->is_repair && strcmp(table, "structures") == 0)
		repair(k, "DELETE FROM structures WHERE blob = ?1", id, 0, 0);
	else if (k->is_repair)
		repair(k, "DELETE FROM texts WHERE blob = ?1", id, 0, 0);
}

/* Expunges every message of a blob whose file is gone, each mailbox
 * under a new MODSEQ so that clients learn of it (RFC 7162 §3.2.10). */
static void
missing_expunge(struct check *k)
{
	for (size_t i = 0; i < k->nmissing && !k->is_failed; i++) {
		int64_t id = k->missing[i];

		repair(k, "UPDATE mailboxes SET highestmodseq = "
		    "highestmodseq + 1 WHERE id IN (SELECT mailbox FROM "
		    "messages WHERE blob = ?1)", id, 0, 0);
		repair(k, "INSERT OR REPLACE INTO expunged(mailbox, uid, "
		    "modseq) SELECT m.mailbox, m.uid, b.highestmodseq FROM "
		    "messages m JOIN mailboxes b ON b.id = m.mailbox "
		    "WHERE m.blob = ?1", id, 0, 0);
		repair(k, "DELETE FROM messages WHERE blob = ?1", id, 0, 0);
		/* The queue cannot send a body that is gone either. */
		repair(k, "DELETE FROM queue WHERE blob = ?1", id, 0, 0);
		/* A blob nobody referenced is not deleted by the trigger. */
		repair(k, "DELETE FROM blobs WHERE id = ?1", id, 0, 0);
	}
}

int
sq_check(struct store *st, bool is_repair,
    void (*report)(void *arg, const char *line), void *arg)
{
	struct check k = {
		.st = st,
		.c = sq_state(st)->writer,
		.is_repair = is_repair,
		.report = report,
		.arg = arg,
	};
	int rc;

	each_row(&k, "PRAGMA quick_check", row_quick_check);
	if ((rc = sq_exec(k.c, SQ_BEGIN_WRITE)) != SQLITE_DONE) {
		sq_err(k.c, rc, "check_begin");
		return -1;
	}
	each_row(&k, "SELECT id, size FROM blobs ORDER BY id", row_blob);
	if (!k.is_failed)
		orphans_check(&k);
	each_row(&k, "SELECT b.id, b.refcount, "
	    "(SELECT count(*) FROM messages m WHERE m.blob = b.id) + "
	    "(SELECT count(*) FROM queue q WHERE q.blob = b.id) AS refs "
	    "FROM blobs b WHERE b.refcount != refs", row_refcount);
	each_row(&k, "SELECT b.id, b.messages, b.unseen, b.size, "
	    "count(m.uid), coalesce(sum(m.flags & 1 = 0), 0), "
	    "coalesce(sum(m.size), 0) FROM mailboxes b LEFT JOIN messages m "
	    "ON m.mailbox = b.id GROUP BY b.id HAVING b.messages != "
	    "count(m.uid) OR b.unseen != coalesce(sum(m.flags & 1 = 0), 0) "
	    "OR b.size != coalesce(sum(m.size), 0)", row_mailbox_counts);
	each_row(&k, "SELECT a.id, a.used_bytes, a.used_messages, "
	    "coalesce(sum(m.size), 0), count(m.uid) FROM accounts a "
	    "LEFT JOIN mailboxes b ON b.account = a.id "
	    "LEFT JOIN messages m ON m.mailbox = b.id GROUP BY a.id "
	    "HAVING a.used_bytes != coalesce(sum(m.size), 0) "
	    "OR a.used_messages != count(m.uid)", row_account_usage);
	each_row(&k, "SELECT b.id, b.uidnext, b.highestmodseq, "
	    "max(coalesce((SELECT max(uid) FROM messages "
	    "WHERE mailbox = b.id), 0), coalesce((SELECT max(uid) FROM "
	    "expunged WHERE mailbox = b.id), 0)) AS u, "
	    "max(coalesce((SELECT max(modseq) FROM messages "
	    "WHERE mailbox = b.id), 0), coalesce((SELECT max(modseq) FROM "
	    "expunged WHERE mailbox = b.id), 0)) AS s FROM mailboxes b "
	    "WHERE b.uidnext <= u OR b.highestmodseq < s", row_numbers);
	each_row(&k, "SELECT 'structures', blob FROM structures "
	    "WHERE blob NOT IN (SELECT id FROM blobs) UNION ALL "
	    "SELECT 'texts', blob FROM texts "
	    "WHERE blob NOT IN (SELECT id FROM blobs)", row_stray);
	if (is_repair)
		missing_expunge(&k);
	if (k.is_failed || !is_repair ||
	    (rc = sq_exec(k.c, SQ_COMMIT)) != SQLITE_DONE) {
		if (!sqlite3_get_autocommit(k.c->db))
			sq_exec(k.c, SQ_ROLLBACK);
	}
	free(k.blobs);
	free(k.missing);
	return k.is_failed ? -1 : k.problems;
}
