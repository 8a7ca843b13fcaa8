/*
 * store_sqlite_backup: the embedded backend's side of `postern backup`
 * (store.h, Backup; DESIGN.md, Storage: backup). Called on the thread of
 * the CLI command, beside the writer thread of the same process and the
 * writers of other processes (the running server).
 *
 * Why every blob the snapshot names is still there when the CLI copies it:
 * a body file is unlinked only after the COMMIT that dropped its last
 * reference (store_sqlite_write.c, gc_files_unlink), and only while the
 * unlinking writer holds DATA/gc.lock exclusively (flock, tried without
 * waiting: when it cannot have it, the blob_gc rows stay and a later
 * commit unlinks them). A snapshot takes the same lock shared, waiting
 * for a writer in the middle of its unlinks, and only then starts its read
 * transaction. So a blob row in the snapshot is a row whose deletion had
 * not committed when the lock was taken, and its file cannot go before the
 * snapshot is freed. Files are linked and synced before the COMMIT that
 * names them, so none is missing for a newer row either. The lock is a
 * flock on an open file: a backup that dies lets go of it with its last
 * descriptor.
 *
 * The metadata is copied with SQLite's online backup API, a few pages per
 * step, from a connection that holds one read transaction for the whole
 * copy: in WAL mode the server's writer is never blocked by it, and the
 * copy never restarts however often the server commits (without the held
 * transaction every commit of another connection restarts it, and a busy
 * server would never let it end). VACUUM INTO would give the same snapshot
 * but rebuilds every table and index, the full-text index included, at a
 * cost in CPU that grows with the store; copying pages is I/O only. The
 * one cost of the held transaction: the checkpointer cannot fold the WAL
 * past it, so the WAL grows while a backup runs and shrinks after.
 */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* Pages per backup step (4 KiB each): the step holds no lock the writer
 * needs; it sets how often progress is reported and how much of the copy
 * is dirty at once (see pages_copy). */
#define BACKUP_STEP_PAGES 256
/* Rows of PRAGMA integrity_check kept for the message. */
#define CHECK_ERRORS_MAX 4
/* A store holds at most this many blobs before we refuse to list them
 * (an allocation bounded by what the file says). */
#define SNAPSHOT_BLOBS_MAX ((size_t)1 << 32)

/* GC paused by a backup this long (a stuck or stopped one holds gc.lock
 * for ever) is logged at warn level, then again at most this often. */
#define GC_PAUSED_WARN_SECS (10 * 60)

bool
sq_gc_trylock(struct sq_state *sq)
{
	struct timespec ts;

	if (flock(sq->gc_lock_fd, LOCK_EX | LOCK_NB) == 0) {
		sq->gc_paused_since = 0;
		sq->gc_paused_warned = 0;
		return true;
	}
	if (errno != EWOULDBLOCK) {
		log_error(NULL, "store.gc lock error=\"%s\"", strerror(errno));
		return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (sq->gc_paused_since == 0)
		sq->gc_paused_since = ts.tv_sec > 0 ? ts.tv_sec : 1;
	if (ts.tv_sec - sq->gc_paused_since >= GC_PAUSED_WARN_SECS &&
	    (sq->gc_paused_warned == 0 ||
	    ts.tv_sec - sq->gc_paused_warned >= GC_PAUSED_WARN_SECS)) {
		sq->gc_paused_warned = ts.tv_sec;
		log_warn(NULL, "store.gc paused=backup minutes=%lld lock=%s "
		    "hint=\"a backup holds it; a stuck or stopped one keeps "
		    "expunged messages' files on disk\"",
		    (long long)(ts.tv_sec - sq->gc_paused_since) / 60,
		    SQ_GC_LOCK);
	} else {
		log_debug(NULL, "store.gc paused=backup");
	}
	return false;
}

void
sq_gc_unlock(struct sq_state *sq)
{
	flock(sq->gc_lock_fd, LOCK_UN);
}

void
store_blob_path(int64_t blob, char *buf, size_t len)
{
	char name[32];

	sq_blob_name(blob, name, sizeof(name));
	snprintf(buf, len, "blobs/%s", name);
}

int
sq_blob_link(struct store *st, int64_t blob, int dirfd, const char *name)
{
	char src[32];

	sq_blob_name(blob, src, sizeof(src));
	/* Flags 0: a symbolic link at the source is linked, not followed
	 * (and the store never makes one). */
	return linkat(sq_state(st)->blobs_fd, src, dirfd, name, 0);
}

/* Runs sql on db; returns the SQLite result code with err set. */
static int
exec_sql(sqlite3 *db, const char *sql, const char *what, char *err,
    size_t errlen)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
	return rc;
}

/* Reads the schema version and every blob of db into snap's fields. */
static int
db_read(sqlite3 *db, int64_t *schema_out,
    struct store_snapshot_blob **blobs_out, size_t *n_out, char *err,
    size_t errlen)
{
	struct store_snapshot_blob *blobs = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int rc;

	*schema_out = 0;
	rc = sqlite3_prepare_v2(db, "SELECT value FROM meta "
	    "WHERE key = 'schema_version'", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
		*schema_out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "no schema version: %s",
		    rc == SQLITE_DONE ? "not a postern store" :
		    sqlite3_errmsg(db));
		return -1;
	}
	if (*schema_out < 1 || *schema_out > sq_schema_version) {
		snprintf(err, errlen, "schema version %" PRId64 " is not one "
		    "this postern knows (1 to %d)", *schema_out,
		    sq_schema_version);
		return -1;
	}
	rc = sqlite3_prepare_v2(db, "SELECT id, size FROM blobs ORDER BY id",
	    -1, &s, NULL);
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		int64_t size = sqlite3_column_int64(s, 1);

		if (id <= 0 || size < 0) {
			snprintf(err, errlen, "blob %" PRId64 " has an "
			    "impossible id or size %" PRId64, id, size);
			goto fail;
		}
		if (n == cap) {
			if (cap >= SNAPSHOT_BLOBS_MAX) {
				snprintf(err, errlen, "too many blobs");
				goto fail;
			}
			cap = cap ? cap * 2 : 1024;
			blobs = xrealloc(blobs, cap * sizeof(*blobs));
		}
		blobs[n].id = id;
		blobs[n].size = (uint64_t)size;
		n++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot list the blobs: %s",
		    sqlite3_errmsg(db));
		goto fail;
	}
	sqlite3_finalize(s);
	*blobs_out = blobs;
	*n_out = n;
	return 0;
fail:
	sqlite3_finalize(s);
	free(blobs);
	return -1;
}

/* Copies src's main database into dst in steps, reporting progress. */
static int
pages_copy(sqlite3 *src, sqlite3 *dst, int dst_fd,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen)
{
	sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (bk == NULL) {
		snprintf(err, errlen, "cannot start the copy: %s",
		    sqlite3_errmsg(dst));
		return -1;
	}
	for (;;) {
		rc = sqlite3_backup_step(bk, BACKUP_STEP_PAGES);
		/* The copy is on the data directory's file system, where
		 * the server's writer syncs the whole file system once a
		 * batch (syncfs): pages left dirty here would all be
		 * flushed inside one of its commits, a pause of seconds
		 * for its clients on a large store. Writing each step out
		 * as it comes (without waiting) keeps that small. */
		sync_file_range(dst_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (progress != NULL) {
			int total = sqlite3_backup_pagecount(bk);

			progress(arg, (uint64_t)(total -
			    sqlite3_backup_remaining(bk)), (uint64_t)total);
		}
		if (rc == SQLITE_DONE)
			break;
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (rc != SQLITE_OK)
			break;
	}
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "copying the metadata: %s",
		    sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

int
sq_snapshot(struct store *st, struct store_snapshot *snap,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen)
{
	struct sq_state *sq = sq_state(st);
	char *path = xasprintf("%s/tmp/d.%ld.backup.XXXXXX", st->data_dir,
	    (long)getpid());
	sqlite3 *src = NULL, *dst = NULL;
	int rc = -1;

	/* First the lock (see the top of this file), then the snapshot. */
	snap->lock_fd = openat(sq->data_fd, SQ_GC_LOCK, O_RDWR | O_NOFOLLOW |
	    O_CLOEXEC);
	if (snap->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s/%s: %s", st->data_dir,
		    SQ_GC_LOCK, strerror(errno));
		goto out;
	}
	while (flock(snap->lock_fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "cannot lock %s/%s: %s",
			    st->data_dir, SQ_GC_LOCK, strerror(errno));
			goto out;
		}
	}
	/* The copy goes to a temporary file in DATA/tmp named like a
	 * delivery's ("d.<pid>."), so that the next open removes it if we
	 * die before unlinking it. */
	snap->db_fd = mkostemp(path, O_CLOEXEC);
	if (snap->db_fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (sqlite3_open_v2(sq->db_path, &src, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", sq->db_path,
		    src != NULL ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	/* The read transaction starts at the first read and pins the
	 * snapshot until the COMMIT below. */
	if (exec_sql(src, "BEGIN; SELECT count(*) FROM meta;",
	    "cannot start the snapshot", err, errlen) != SQLITE_OK)
		goto out;
	if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    dst != NULL ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	/* A temporary file: no journal, no syncs (the CLI syncs its copy). */
	if (exec_sql(dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;",
	    path, err, errlen) != SQLITE_OK)
		goto out;
	if (pages_copy(src, dst, snap->db_fd, progress, arg, err,
	    errlen) < 0)
		goto out;
	exec_sql(src, "COMMIT", "end of the snapshot", err, errlen);
	sqlite3_close(src);
	src = NULL;
	/* The pages carry the source's WAL mode; the copy becomes an
	 * ordinary rollback-journal database, which a reader can open
	 * without creating -wal or -shm files beside it (verify) and
	 * which serve turns back into WAL at its first open. */
	if (exec_sql(dst, "PRAGMA journal_mode=DELETE;", path, err,
	    errlen) != SQLITE_OK)
		goto out;
	if (db_read(dst, &snap->schema, &snap->blobs, &snap->nblobs, err,
	    errlen) < 0)
		goto out;
	rc = 0;
out:
	if (src != NULL)
		sqlite3_close(src);
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == 0) {
		snprintf(err, errlen, "cannot close %s", path);
		rc = -1;
	}
	if (snap->db_fd >= 0)
		unlink(path);
	free(path);
	return rc;
}

/* path as a URI path: every byte outside the unreserved set and '/' is
 * %-escaped (RFC 3986; SQLite's URI filenames). */
static char *
uri_path(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path);
	char *out = xmalloc(3 * len + 1), *p = out;

	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-._~/", *s) != NULL) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	*p = '\0';
	return out;
}

/* Whether the file db has open is the one fd is open on (same device and
 * inode). */
static bool
is_same_file(sqlite3 *db, int fd)
{
	const char *name = sqlite3_db_filename(db, "main");
	struct stat a, b;

	return name != NULL && fstat(fd, &a) == 0 &&
	    stat(name, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino;
}

/* Checks the database at db_path, or (fd >= 0) the one open on fd. */
static int
file_check(const char *db_path, int fd,
    struct store_snapshot_blob **blobs_out, size_t *n_out,
    int64_t *schema_out, char *err, size_t errlen)
{
	char *upath, *uri, fdpath[64];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	size_t nerr = 0, used = 0;
	int rc = -1, src, flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
	    SQLITE_OPEN_NOMUTEX;

	*blobs_out = NULL;
	*n_out = 0;
	if (fd >= 0) {
		/* The descriptor's own file, not whatever has its name
		 * now: /proc/self/fd/N is a link, so not NOFOLLOW. */
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
		db_path = fdpath;
	} else {
		flags |= SQLITE_OPEN_NOFOLLOW;
	}
	upath = uri_path(db_path);
	uri = xasprintf("file:%s?immutable=1", upath);
	/* immutable: no locks, no journal, nothing written beside it. */
	if (sqlite3_open_v2(uri, &db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open: %s", db != NULL ?
		    sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	/* A file from elsewhere is hostile input: no schema-defined
	 * functions or triggers run, and SQL cannot corrupt it. */
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
	    SQLITE_OK || sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA,
	    0, NULL) != SQLITE_OK || exec_sql(db, "PRAGMA trusted_schema=OFF",
	    "trusted_schema", err, errlen) != SQLITE_OK)
		goto out;
	/* SQLite resolves the link to the name the file has now; refuse if
	 * that is another file (renamed over it in between). */
	if (fd >= 0 && !is_same_file(db, fd)) {
		snprintf(err, errlen, "replaced while it was checked");
		goto out;
	}
	src = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
	while (s != NULL && (src = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 0);

		if (text == NULL || strcmp(text, "ok") == 0)
			continue;
		if (nerr++ < CHECK_ERRORS_MAX && used < errlen) {
			int k = snprintf(err + used, errlen - used, "%s%s",
			    used == 0 ? "integrity check: " : "; ", text);

			if (k > 0)
				used += (size_t)k;
		}
	}
	sqlite3_finalize(s);
	if (src != SQLITE_DONE) {
		snprintf(err, errlen, "integrity check failed: %s",
		    sqlite3_errmsg(db));
		goto out;
	}
	if (nerr > 0)
		goto out;
	rc = db_read(db, schema_out, blobs_out, n_out, err, errlen);
	if (rc == 0 && fd >= 0 && !is_same_file(db, fd)) {
		snprintf(err, errlen, "replaced while it was checked");
		free(*blobs_out);
		*blobs_out = NULL;
		*n_out = 0;
		rc = -1;
	}
out:
	sqlite3_close(db);
	free(uri);
	free(upath);
	return rc;
}

int
store_snapshot_file_check(const char *db_path,
    struct store_snapshot_blob **blobs_out, size_t *n_out,
    int64_t *schema_out, char *err, size_t errlen)
{
	return file_check(db_path, -1, blobs_out, n_out, schema_out, err,
	    errlen);
}

int
store_snapshot_fd_check(int fd, struct store_snapshot_blob **blobs_out,
    size_t *n_out, int64_t *schema_out, char *err, size_t errlen)
{
	return file_check(NULL, fd, blobs_out, n_out, schema_out, err,
	    errlen);
}
