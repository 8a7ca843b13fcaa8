/*
 * store_sqlite: the embedded backend (DESIGN.md, Storage). Metadata in
 * SQLite (DATA/store.db, WAL mode), message bodies as immutable files under
 * DATA/blobs. This file opens and migrates the database, keeps the
 * connections (one writer, a pool of readers) and answers the reads; the
 * writer's side is store_sqlite_write.c, search store_sqlite_search.c,
 * store_check store_sqlite_check.c.
 *
 * Counters (messages, unseen and size per mailbox, bytes and messages per
 * account, references per blob) are kept by triggers on the messages
 * table, in the same transaction as the change, so they cannot drift from
 * the rows they count.
 */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* The schema this code reads and writes; older stores are migrated on
 * open, newer ones refused. */
#define SCHEMA_VERSION 14
/* How long a connection waits for a lock another one holds (another
 * process writing, a checkpoint) before the call fails with STORE_TEMP. */
#define BUSY_TIMEOUT_MS 10000
/* WAL frames (pages) after which the checkpointer runs, and how often it
 * runs anyway. */
#define CKPT_FRAMES 1000
#define CKPT_SECS 10

static const char *const stmt_sql[SQ_STMT_COUNT] = {
#define SQ_STMT_SQL(name, sql) [SQ_##name] = sql,
	SQ_STMTS(SQ_STMT_SQL)
#undef SQ_STMT_SQL
};

/* Version 1. The body text of every message is kept in texts and indexed
 * by fts (created apart, when the trigram tokenizer exists); the index
 * covers texts.blob <= meta fts_upto and is built in the background
 * (store_sqlite_write.c, sq_idle), so a delivery never waits for it. */
static const char schema_v1[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE domains ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" catchall TEXT);"
	"CREATE TABLE accounts ("
	" id INTEGER PRIMARY KEY,"
	" address TEXT NOT NULL UNIQUE,"
	" domain INTEGER NOT NULL REFERENCES domains(id),"
	" display_name TEXT,"
	" password_hash TEXT,"
	" scram_sha256 TEXT,"
	" quota_bytes INTEGER NOT NULL DEFAULT 0,"
	" quota_messages INTEGER NOT NULL DEFAULT 0,"
	" is_enabled INTEGER NOT NULL DEFAULT 1,"
	" imap INTEGER NOT NULL DEFAULT -1,"
	" pop3 INTEGER NOT NULL DEFAULT -1,"
	" submission INTEGER NOT NULL DEFAULT -1,"
	" forward_to TEXT,"
	" is_forward_kept INTEGER NOT NULL DEFAULT 0,"
	" pop3_retention_days INTEGER NOT NULL DEFAULT 0,"
	" locked_until INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" used_bytes INTEGER NOT NULL DEFAULT 0,"
	" used_messages INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX accounts_domain ON accounts(domain);"
	"CREATE TABLE aliases ("
	" address TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" domain INTEGER NOT NULL REFERENCES domains(id),"
	" PRIMARY KEY (address, target)) WITHOUT ROWID;"
	"CREATE INDEX aliases_domain ON aliases(domain);"
	"CREATE TABLE mailboxes ("
	" id INTEGER PRIMARY KEY,"
	" account INTEGER NOT NULL REFERENCES accounts(id),"
	" name TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL DEFAULT 1,"
	" highestmodseq INTEGER NOT NULL DEFAULT 1,"
	" special INTEGER NOT NULL DEFAULT 0,"
	" subscribed INTEGER NOT NULL DEFAULT 0,"
	" messages INTEGER NOT NULL DEFAULT 0,"
	" unseen INTEGER NOT NULL DEFAULT 0,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE (account, name));"
	"CREATE TABLE blobs ("
	" id INTEGER PRIMARY KEY,"
	" size INTEGER NOT NULL,"
	" refcount INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE structures ("
	" blob INTEGER PRIMARY KEY,"
	" envelope TEXT, bodystructure TEXT, body TEXT, parts TEXT,"
	" date INTEGER NOT NULL,"
	" subject TEXT, from_ TEXT, to_ TEXT, cc TEXT, bcc TEXT,"
	" message_id TEXT);"
	"CREATE TABLE texts ("
	" blob INTEGER PRIMARY KEY,"
	" headers TEXT NOT NULL,"
	" body TEXT NOT NULL);"
	"CREATE TABLE messages ("
	" mailbox INTEGER NOT NULL REFERENCES mailboxes(id),"
	" uid INTEGER NOT NULL,"
	" blob INTEGER NOT NULL REFERENCES blobs(id),"
	" modseq INTEGER NOT NULL,"
	" flags INTEGER NOT NULL,"
	" keywords TEXT,"
	" internal_date INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" retrieved INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (mailbox, uid)) WITHOUT ROWID;"
	"CREATE INDEX messages_modseq ON messages(mailbox, modseq);"
	"CREATE INDEX messages_blob ON messages(blob);"
	/* RFC 7162 §3.2.10: what QRESYNC reports as VANISHED. */
	"CREATE TABLE expunged ("
	" mailbox INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox, uid)) WITHOUT ROWID;"
	"CREATE INDEX expunged_modseq ON expunged(mailbox, modseq);"
	/* Blobs whose last message went: their files are unlinked after
	 * the commit, and again at open if a crash came between. */
	"CREATE TABLE blob_gc (id INTEGER PRIMARY KEY);"
	"CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN"
	" UPDATE mailboxes SET messages = messages + 1,"
	"  unseen = unseen + (NEW.flags & 1 = 0), size = size + NEW.size"
	"  WHERE id = NEW.mailbox;"
	" UPDATE accounts SET used_bytes = used_bytes + NEW.size,"
	"  used_messages = used_messages + 1"
	"  WHERE id = (SELECT account FROM mailboxes WHERE id = NEW.mailbox);"
	" UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob;"
	"END;"
	"CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN"
	" UPDATE mailboxes SET messages = messages - 1,"
	"  unseen = unseen - (OLD.flags & 1 = 0), size = size - OLD.size"
	"  WHERE id = OLD.mailbox;"
	" UPDATE accounts SET used_bytes = used_bytes - OLD.size,"
	"  used_messages = used_messages - 1"
	"  WHERE id = (SELECT account FROM mailboxes WHERE id = OLD.mailbox);"
	" UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob;"
	" INSERT OR IGNORE INTO blob_gc(id)"
	"  SELECT id FROM blobs WHERE id = OLD.blob AND refcount <= 0;"
	" DELETE FROM blobs WHERE id = OLD.blob AND refcount <= 0;"
	"END;"
	"CREATE TRIGGER messages_seen AFTER UPDATE OF flags ON messages"
	" WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN"
	" UPDATE mailboxes SET unseen = unseen + (NEW.flags & 1 = 0)"
	"  - (OLD.flags & 1 = 0) WHERE id = NEW.mailbox;"
	"END;"
	"CREATE TRIGGER messages_mailbox AFTER UPDATE OF mailbox ON messages"
	" BEGIN"
	" UPDATE mailboxes SET messages = messages - 1,"
	"  unseen = unseen - (OLD.flags & 1 = 0), size = size - OLD.size"
	"  WHERE id = OLD.mailbox;"
	" UPDATE mailboxes SET messages = messages + 1,"
	"  unseen = unseen + (NEW.flags & 1 = 0), size = size + NEW.size"
	"  WHERE id = NEW.mailbox;"
	" UPDATE accounts SET used_bytes = used_bytes - OLD.size,"
	"  used_messages = used_messages - 1"
	"  WHERE id = (SELECT account FROM mailboxes WHERE id = OLD.mailbox);"
	" UPDATE accounts SET used_bytes = used_bytes + NEW.size,"
	"  used_messages = used_messages + 1"
	"  WHERE id = (SELECT account FROM mailboxes WHERE id = NEW.mailbox);"
	"END;"
	"CREATE TRIGGER blobs_delete AFTER DELETE ON blobs BEGIN"
	" DELETE FROM structures WHERE blob = OLD.id;"
	" DELETE FROM texts WHERE blob = OLD.id;"
	"END;"
	"INSERT INTO meta(key, value) VALUES ('blob_next', 1);"
	"INSERT INTO meta(key, value) VALUES ('fts_upto', 0);";

/* Version 2: the outbound queue (store_delivery_queue), whose entries
 * hold a reference to their blob like messages do, and app passwords. */
static const char schema_v2[] =
	"CREATE TABLE queue ("
	" id INTEGER PRIMARY KEY,"
	" blob INTEGER NOT NULL REFERENCES blobs(id),"
	" sender TEXT NOT NULL,"
	" rcpt TEXT NOT NULL,"
	" dsn_envelope TEXT,"
	" dsn_rcpt TEXT,"
	" created INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT);"
	"CREATE INDEX queue_next ON queue(next_attempt);"
	"CREATE TRIGGER queue_insert AFTER INSERT ON queue BEGIN"
	" UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob;"
	"END;"
	"CREATE TRIGGER queue_delete AFTER DELETE ON queue BEGIN"
	" UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob;"
	" INSERT OR IGNORE INTO blob_gc(id)"
	"  SELECT id FROM blobs WHERE id = OLD.blob AND refcount <= 0;"
	" DELETE FROM blobs WHERE id = OLD.blob AND refcount <= 0;"
	"END;"
	"CREATE TABLE app_passwords ("
	" id INTEGER PRIMARY KEY,"
	" account INTEGER NOT NULL REFERENCES accounts(id),"
	" name TEXT NOT NULL,"
	" hash TEXT NOT NULL,"
	" protocols INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" last_used INTEGER NOT NULL DEFAULT 0,"
	" last_peer TEXT,"
	" UNIQUE (account, name));";

/* Version 3: what the queue runner and postern queue need: entries an
 * administrator holds, the lease of a runner at work on an entry, and
 * whether the sender was warned of a delay. */
static const char schema_v3[] =
	"ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;";

/* Version 4: subscriptions of their own (RFC 9051 §6.3.7: a server must
 * not drop a name from them when the mailbox is deleted). The subscribed
 * column of mailboxes is read no more. */
static const char schema_v4[] =
	"CREATE TABLE IF NOT EXISTS subscriptions ("
	" account INTEGER NOT NULL REFERENCES accounts(id),"
	" name TEXT NOT NULL,"
	" PRIMARY KEY (account, name)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO subscriptions(account, name)"
	" SELECT account, name FROM mailboxes WHERE subscribed = 1;";

/* Version 5: queue.blob is a foreign key of blobs; without an index on
 * it every delete of a blob (each expunge, each delivered queue entry)
 * scanned the whole queue to check for children: 5,000 queued entries
 * made QUEUE_DELETE 8x and the check's refcount query 290x slower. */
static const char schema_v5[] =
	"CREATE INDEX IF NOT EXISTS queue_blob ON queue(blob);";

/* Version 6: whether a logged-in account sent the message (only that is
 * DKIM-signed as ours and bounced to any sender), and entries that are
 * success reports to write (RFC 3461 NOTIFY=SUCCESS on local delivery).
 * Entries queued before are taken as not authenticated: unsigned, their
 * failures reported only to senders in our domains. */
static const char schema_v6[] =
	"ALTER TABLE queue ADD COLUMN authenticated INTEGER NOT NULL "
	"DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN report INTEGER NOT NULL DEFAULT 0;";

/* Version 7: the migration map of postern migrate (store.h): for each
 * message copied from another server, keyed by the source (host and
 * user), its folder, UIDVALIDITY and UID (or POP3 UIDL), where the copy is
 * here, the source flags last copied, and what re-matches it after a
 * UIDVALIDITY change (Message-ID and a hash of the bytes); per source
 * folder where the last run ended (RFC 7162 HIGHESTMODSEQ). */
static const char schema_v7[] =
	"CREATE TABLE IF NOT EXISTS migrate_map ("
	" account INTEGER NOT NULL REFERENCES accounts(id),"
	" source TEXT NOT NULL,"
	" folder TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL,"
	" key TEXT NOT NULL,"
	" mailbox INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" flags INTEGER NOT NULL,"
	" keywords TEXT,"
	" message_id TEXT,"
	" hash TEXT,"
	" size INTEGER NOT NULL,"
	" PRIMARY KEY (account, source, folder, uidvalidity, key))"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS migrate_folders ("
	" account INTEGER NOT NULL REFERENCES accounts(id),"
	" source TEXT NOT NULL,"
	" folder TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (account, source, folder)) WITHOUT ROWID;";

/* Version 8: when each message came into its mailbox (RFC 8514 SAVEDATE:
 * delivery, APPEND, COPY, MOVE). Rows from before have none (NULL). */
static const char schema_v8[] =
	"ALTER TABLE messages ADD COLUMN saved INTEGER;";

/* Version 9: what THREAD=REFERENCES reads besides the Message-ID (RFC
 * 5256 §3 step 1.A): the In-Reply-To and References ids, parsed at
 * delivery. refs is '' for a message without References, so NULL marks a
 * message stored before version 9: store_sort_list reads those two fields
 * from its header when THREAD asks (the message body is never read), and
 * leaves the row as it is (nothing is rewritten at open, however large
 * the store). */
static const char schema_v9[] =
	"ALTER TABLE structures ADD COLUMN in_reply_to TEXT;"
	"ALTER TABLE structures ADD COLUMN refs TEXT;";

/* Version 10: the RFC 8970 preview of each body, made by mime_parse at
 * delivery. Bodies stored before have none (NULL): IMAP makes theirs when
 * asked. */
static const char schema_v10[] =
	"ALTER TABLE structures ADD COLUMN preview TEXT;";

/* Version 11: the Date: header's own calendar time (its clock reading,
 * as if in UTC) for SENTBEFORE/SENTON/SENTSINCE, which ignore the time
 * zone (RFC 3501 §6.4.4). Bodies stored before have none and are searched
 * by their UTC date. */
static const char schema_v11[] =
	"ALTER TABLE structures ADD COLUMN date_local INTEGER;";

/* Version 12: access control lists (RFC 4314, store_sqlite_acl.c). One
 * row per mailbox, grantee (an account id; 0 is "anyone") and sign, the
 * rights as enum store_acl_right bits. The owner has no row: it always
 * holds every right. The triggers drop the rows of a mailbox that goes
 * and those naming an account that goes, so that an account made later
 * under the same address inherits nothing. */
static const char schema_v12[] =
	"CREATE TABLE IF NOT EXISTS acl ("
	" mailbox INTEGER NOT NULL REFERENCES mailboxes(id),"
	" grantee INTEGER NOT NULL,"
	" negative INTEGER NOT NULL,"
	" rights INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox, grantee, negative)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS acl_grantee ON acl(grantee);"
	"CREATE TRIGGER IF NOT EXISTS acl_mailbox_delete"
	" BEFORE DELETE ON mailboxes BEGIN"
	" DELETE FROM acl WHERE mailbox = OLD.id;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS acl_account_delete"
	" AFTER DELETE ON accounts BEGIN"
	" DELETE FROM acl WHERE grantee = OLD.id;"
	"END;";

/* Version 13: IMAP METADATA (RFC 5464; store.h). mailbox 0 holds server
 * entries, account 0 the server's shared ones. Rows go with their mailbox
 * and account by triggers, as acl's do, so that no deleting path can
 * forget them. */
static const char schema_v13[] =
	"CREATE TABLE IF NOT EXISTS metadata ("
	" account INTEGER NOT NULL,"
	" mailbox INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" value BLOB NOT NULL,"
	" PRIMARY KEY (account, mailbox, name)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS metadata_mailbox ON metadata(mailbox);"
	"CREATE TRIGGER IF NOT EXISTS metadata_mailbox_delete"
	" BEFORE DELETE ON mailboxes BEGIN"
	" DELETE FROM metadata WHERE mailbox = OLD.id;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS metadata_account_delete"
	" AFTER DELETE ON accounts BEGIN"
	" DELETE FROM metadata WHERE account = OLD.id;"
	"END;";

/* Version 14: the first UID of each mailbox that no IMAP4rev1 session has
 * claimed as \Recent (RFC 3501 §2.3.2; store_recent.c). Mailboxes that
 * existed before start with none recent: nothing says which of their
 * messages a session has already seen. */
static const char schema_v14[] =
	"ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL "
	"DEFAULT 1;"
	"UPDATE mailboxes SET recent_uid = uidnext;";

/* The full-text index: trigram, so that any substring of three or more
 * characters narrows a search (SQLite 3.34+). detail=none keeps the index
 * small and its updates cheap: a search asks for every trigram of the
 * string (not a phrase) and then checks the exact substring on each
 * candidate anyway, so positions would buy nothing. External content:
 * the text lives once, in texts. */
static const char schema_fts[] =
	"CREATE VIRTUAL TABLE fts USING fts5(headers, body,"
	" content='texts', content_rowid='blob',"
	" tokenize='trigram', detail='none');"
	"CREATE TRIGGER texts_delete AFTER DELETE ON texts"
	" WHEN OLD.blob <= (SELECT value FROM meta WHERE key = 'fts_upto')"
	" BEGIN"
	" INSERT INTO fts(fts, rowid, headers, body)"
	"  VALUES ('delete', OLD.blob, OLD.headers, OLD.body);"
	"END;";

/* ---- Statements ------------------------------------------------------ */

enum store_err
sq_err(struct sq_conn *c, int rc, const char *what)
{
	log_error(NULL, "store.sqlite op=%s rc=%d error=\"%s\"", what, rc,
	    c != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
	if ((rc & 0xff) == SQLITE_FULL) {
		if (c != NULL)
			c->is_full = true;
		return STORE_NO_SPACE;
	}
	return STORE_TEMP;
}

sqlite3_stmt *
sq_stmt(struct sq_conn *c, enum sq_stmt id)
{
	int rc;

	if (c->stmts[id] != NULL)
		return c->stmts[id];
	rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
	    SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL);
	if (rc != SQLITE_OK) {
		/* Our own SQL: only a damaged database gets here. */
		sq_err(c, rc, stmt_sql[id]);
		c->stmts[id] = NULL;
	}
	return c->stmts[id];
}

void
sq_reset(sqlite3_stmt *s)
{
	if (s != NULL) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

int
sq_exec(struct sq_conn *c, enum sq_stmt id)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	int rc;

	if (s == NULL)
		return SQLITE_ERROR;
	rc = sqlite3_step(s);
	sq_reset(s);
	if ((rc & 0xff) == SQLITE_FULL)
		c->is_full = true;
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

char *
sq_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

int
sq_meta_get(struct sq_conn *c, const char *key, int64_t *value_out)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_META_GET);
	int rc;

	if (s == NULL)
		return SQLITE_ERROR;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*value_out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*value_out = 0;
		rc = SQLITE_OK;
	}
	sq_reset(s);
	return rc;
}

int
sq_meta_set(struct sq_conn *c, const char *key, int64_t value)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_META_SET);
	int rc;

	if (s == NULL)
		return SQLITE_ERROR;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, value);
	rc = sqlite3_step(s);
	sq_reset(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void
sq_blob_name(int64_t id, char *buf, size_t len)
{
	/* Consecutive ids share a directory (256 to each), so one batch
	 * touches one or two directories and each directory's fsync
	 * covers many files; over time the 256 directories fill evenly. */
	snprintf(buf, len, "%02x/%" PRId64, (unsigned)((id >> 8) & 0xff), id);
}

/* ---- SQL functions for search ---------------------------------------- */

/* postern_contains(hay, needle): RFC 9051 §6.4.4 substring test. */
static void
fn_contains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *hay = (const char *)sqlite3_value_text(argv[0]);
	const char *needle = (const char *)sqlite3_value_text(argv[1]);

	(void)argc;
	if (hay == NULL || needle == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	sqlite3_result_int(ctx, has_store_text(hay,
	    (size_t)sqlite3_value_bytes(argv[0]), needle,
	    (size_t)sqlite3_value_bytes(argv[1])));
}

/* postern_keyword(list, keyword): the keyword is set. */
static void
fn_keyword(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *list = (const char *)sqlite3_value_text(argv[0]);
	const char *kw = (const char *)sqlite3_value_text(argv[1]);

	(void)argc;
	sqlite3_result_int(ctx, list != NULL && kw != NULL &&
	    has_store_keyword(list, kw, strlen(kw)));
}

/* postern_header(headers, field, needle): RFC 9051 §6.4.4 HEADER. */
static void
fn_header(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *headers = (const char *)sqlite3_value_text(argv[0]);
	const char *field = (const char *)sqlite3_value_text(argv[1]);
	const char *needle = (const char *)sqlite3_value_text(argv[2]);

	(void)argc;
	if (headers == NULL || field == NULL || needle == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	sqlite3_result_int(ctx, has_store_header_text(headers,
	    (size_t)sqlite3_value_bytes(argv[0]), field, needle,
	    (size_t)sqlite3_value_bytes(argv[2])));
}

/* ---- Connections ----------------------------------------------------- */

static void
conn_close(struct sq_conn **cp)
{
	struct sq_conn *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	for (size_t i = 0; i < SQ_STMT_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_error(NULL, "store.sqlite_close error=\"%s\"",
		    sqlite3_errmsg(c->db));
	free(c);
}

static int
conn_pragmas(struct sq_conn *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error(NULL, "store.sqlite_pragma sql=\"%s\" error=\"%s\"",
		    sql, msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
	}
	return rc;
}

static struct sq_conn *
conn_open(const char *path, bool is_writer, char *err, size_t errlen)
{
	struct sq_conn *c = xcalloc(1, sizeof(*c));
	int flags = SQLITE_OPEN_NOMUTEX | (is_writer ?
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
	int rc = sqlite3_open_v2(path, &c->db, flags, NULL);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	/* The writer: WAL, and synchronous=FULL so that COMMIT returns only
	 * once the WAL is on disk; it is the durability point of a batch.
	 * Readers: a larger map for scans. */
	if (is_writer) {
		sqlite3_stmt *s;
		const unsigned char *mode;
		bool is_wal;

		rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1,
		    &s, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path,
			    sqlite3_errmsg(c->db));
			goto fail;
		}
		rc = sqlite3_step(s);
		mode = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
		is_wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
		sqlite3_finalize(s);
		if (!is_wal) {
			snprintf(err, errlen, "%s: cannot use WAL mode: %s",
			    path, sqlite3_errmsg(c->db));
			goto fail;
		}
		rc = conn_pragmas(c, "PRAGMA synchronous=FULL;"
		    "PRAGMA foreign_keys=ON;"
		    "PRAGMA cache_size=-65536;"
		    "PRAGMA journal_size_limit=67108864;"
		    "PRAGMA temp_store=MEMORY;");
	} else {
		/* No mmap: in WAL mode a reader unmaps and refaults its
		 * whole map at the first read after each commit, and the
		 * writer commits many times a second (it cost the IMAP mix
		 * 60 % of its CPU). */
		rc = conn_pragmas(c, "PRAGMA cache_size=-16384;"
		    "PRAGMA temp_store=MEMORY;");
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
		goto fail;
	}
	sqlite3_create_function(c->db, "postern_contains", 2,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_contains, NULL, NULL);
	sqlite3_create_function(c->db, "postern_keyword", 2,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_keyword, NULL, NULL);
	sqlite3_create_function(c->db, "postern_header", 3,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_header, NULL, NULL);
	return c;
fail:
	conn_close(&c);
	return NULL;
}

struct sq_conn *
sq_reader_get(struct store *st)
{
	struct sq_state *sq = sq_state(st);
	struct sq_conn *c;
	char err[256];

	pthread_mutex_lock(&sq->pool_lock);
	c = sq->pool;
	if (c != NULL)
		sq->pool = c->next;
	pthread_mutex_unlock(&sq->pool_lock);
	if (c != NULL)
		return c;
	c = conn_open(sq->db_path, false, err, sizeof(err));
	if (c == NULL)
		log_error(NULL, "store.reader_open error=\"%s\"", err);
	return c;
}

void
sq_reader_put(struct store *st, struct sq_conn *c)
{
	struct sq_state *sq = sq_state(st);

	/* A read transaction left open would pin an old snapshot and stop
	 * checkpoints; every reader ends its own, this is a safety net. */
	if (!sqlite3_get_autocommit(c->db))
		sq_exec(c, SQ_ROLLBACK);
	pthread_mutex_lock(&sq->pool_lock);
	c->next = sq->pool;
	sq->pool = c;
	pthread_mutex_unlock(&sq->pool_lock);
}

/* ---- Checkpoints ----------------------------------------------------- */

/*
 * SQLite checkpoints a WAL database from inside the COMMIT that crosses
 * wal_autocheckpoint pages: the writer would copy pages and fsync the
 * database file while every caller of its batch waits. Instead the
 * writer's connection only reports the WAL's size (this hook, called after
 * each commit), and a thread of its own checkpoints PASSIVE, which never
 * waits for or blocks the writer or the readers. SQLite restarts the WAL
 * from its beginning at the first commit after a complete checkpoint.
 */
static int
on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_state *sq = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&sq->ckpt_lock);
	sq->wal_frames = frames;
	if (frames >= CKPT_FRAMES)
		pthread_cond_signal(&sq->ckpt_cond);
	pthread_mutex_unlock(&sq->ckpt_lock);
	return SQLITE_OK;
}

static void *
ckpt_main(void *arg)
{
	struct sq_state *sq = arg;

	pthread_mutex_lock(&sq->ckpt_lock);
	while (!sq->is_ckpt_stopping) {
		struct timespec until;
		int rc, frames = 0, done = 0;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += CKPT_SECS;
		if (sq->wal_frames < CKPT_FRAMES)
			pthread_cond_timedwait(&sq->ckpt_cond, &sq->ckpt_lock,
			    &until);
		if (sq->is_ckpt_stopping)
			break;
		sq->wal_frames = 0;
		pthread_mutex_unlock(&sq->ckpt_lock);
		rc = sqlite3_wal_checkpoint_v2(sq->ckpt->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			sq_err(sq->ckpt, rc, "checkpoint");
		pthread_mutex_lock(&sq->ckpt_lock);
	}
	pthread_mutex_unlock(&sq->ckpt_lock);
	return NULL;
}

static int
ckpt_start(struct sq_state *sq, char *err, size_t errlen)
{
	int rc;

	sq->ckpt = conn_open(sq->db_path, true, err, errlen);
	if (sq->ckpt == NULL)
		return -1;
	sqlite3_wal_hook(sq->writer->db, on_wal_commit, sq);
	rc = pthread_create(&sq->ckpt_thread, NULL, ckpt_main, sq);
	if (rc != 0) {
		sqlite3_wal_hook(sq->writer->db, NULL, NULL);
		conn_close(&sq->ckpt);
		snprintf(err, errlen, "cannot start the checkpointer: %s",
		    strerror(rc));
		return -1;
	}
	return 0;
}

static void
ckpt_stop(struct sq_state *sq)
{
	if (sq->ckpt == NULL)
		return;
	pthread_mutex_lock(&sq->ckpt_lock);
	sq->is_ckpt_stopping = true;
	pthread_cond_signal(&sq->ckpt_cond);
	pthread_mutex_unlock(&sq->ckpt_lock);
	pthread_join(sq->ckpt_thread, NULL);
	conn_close(&sq->ckpt);
}

/* ---- Open, migrate, close -------------------------------------------- */

/* Whether table has the column: a migration that adds one is then done
 * already (a store whose version was set back by hand, as the tests do). */
static bool
has_column(struct sq_conn *c, const char *table, const char *column)
{
	sqlite3_stmt *s = NULL;
	bool has = false;

	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM pragma_table_info(?1) "
	    "WHERE name = ?2", -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
	has = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return has;
}

/* For store_sqlite_backup.c: a backup records it, and refuses to check a
 * copy newer than this. */
const int sq_schema_version = SCHEMA_VERSION;

static int
schema_migrate(struct sq_conn *c, bool *has_fts, char *err, size_t errlen)
{
	char *msg = NULL;
	int64_t version = 0, fts = 0;
	int rc;

	rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto fail;
	if (sqlite3_table_column_metadata(c->db, NULL, "meta", "value", NULL,
	    NULL, NULL, NULL, NULL) == SQLITE_OK) {
		if (sq_meta_get(c, "schema_version", &version) != SQLITE_OK ||
		    sq_meta_get(c, "fts", &fts) != SQLITE_OK) {
			rc = SQLITE_ERROR;
			goto fail;
		}
	}
	if (version > SCHEMA_VERSION) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "the store has schema version %" PRId64
		    ", newer than this postern (%d)", version, SCHEMA_VERSION);
		return -1;
	}
	if (version < 1) {
		rc = sqlite3_exec(c->db, schema_v1, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
		/* RFC 9051 §2.3.1.1: UIDVALIDITY must change whenever a
		 * mailbox name is reused. The counter starts at the clock, so
		 * even a store made anew from nothing does not hand out the
		 * values of its predecessor (unless mailboxes were created
		 * faster than one per second on average). */
		rc = sq_meta_set(c, "uidvalidity_next", (int64_t)time(NULL));
		if (rc != SQLITE_OK)
			goto fail;
		fts = sqlite3_exec(c->db, schema_fts, NULL, NULL, NULL) ==
		    SQLITE_OK;
		if (!fts)
			log_warn(NULL, "store.schema fts=unavailable "
			    "reason=\"no FTS5 trigram tokenizer\" "
			    "effect=\"text search scans\"");
		if ((rc = sq_meta_set(c, "fts", fts)) != SQLITE_OK)
			goto fail;
	}
	/* Later versions migrate here, one step each. */
	if (version < 2) {
		rc = sqlite3_exec(c->db, schema_v2, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 3) {
		rc = sqlite3_exec(c->db, schema_v3, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 4) {
		rc = sqlite3_exec(c->db, schema_v4, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 5) {
		rc = sqlite3_exec(c->db, schema_v5, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 6) {
		rc = sqlite3_exec(c->db, schema_v6, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 7) {
		rc = sqlite3_exec(c->db, schema_v7, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 8 && !has_column(c, "messages", "saved")) {
		rc = sqlite3_exec(c->db, schema_v8, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 9 && !has_column(c, "structures", "refs")) {
		rc = sqlite3_exec(c->db, schema_v9, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 10 && !has_column(c, "structures", "preview")) {
		rc = sqlite3_exec(c->db, schema_v10, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 11 && !has_column(c, "structures", "date_local")) {
		rc = sqlite3_exec(c->db, schema_v11, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 12) {
		rc = sqlite3_exec(c->db, schema_v12, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 13) {
		rc = sqlite3_exec(c->db, schema_v13, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (version < 14 && !has_column(c, "mailboxes", "recent_uid")) {
		rc = sqlite3_exec(c->db, schema_v14, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	rc = sq_meta_set(c, "schema_version", SCHEMA_VERSION);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto fail;
	*has_fts = fts != 0;
	return 0;
fail:
	snprintf(err, errlen, "cannot set up the store's schema: %s",
	    msg != NULL ? msg : sqlite3_errmsg(c->db));
	sqlite3_free(msg);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
dirs_make(struct sq_state *sq, const char *data_dir, char *err,
    size_t errlen)
{
	char *blobs = xasprintf("%s/blobs", data_dir);
	int rc = -1;

	sq->data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if ((mkdir(blobs, 0700) < 0 && errno != EEXIST) || sq->data_fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", blobs,
		    strerror(errno));
		goto out;
	}
	sq->blobs_fd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sq->blobs_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", blobs,
		    strerror(errno));
		goto out;
	}
	for (unsigned i = 0; i < 256; i++) {
		char name[8];

		snprintf(name, sizeof(name), "%02x", i);
		if (mkdirat(sq->blobs_fd, name, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s/%s: %s", blobs,
			    name, strerror(errno));
			goto out;
		}
	}
	/* The directories must outlive a crash before any file in them is
	 * committed. */
	if (fsync(sq->blobs_fd) < 0 || fsync(sq->data_fd) < 0) {
		snprintf(err, errlen, "cannot sync %s: %s", blobs,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(blobs);
	return rc;
}

static void
sq_close(struct store *st)
{
	struct sq_state *sq = sq_state(st);

	if (sq == NULL)
		return;
	ckpt_stop(sq);
	sq_syncer_stop(sq);
	while (sq->pool != NULL) {
		struct sq_conn *c = sq->pool;

		sq->pool = c->next;
		conn_close(&c);
	}
	if (sq->writer != NULL) {
		/* Folds the WAL into the database so that the next open
		 * starts small. */
		sqlite3_wal_checkpoint_v2(sq->writer->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		conn_close(&sq->writer);
	}
	if (sq->data_fd >= 0)
		close(sq->data_fd);
	if (sq->blobs_fd >= 0)
		close(sq->blobs_fd);
	if (sq->gc_lock_fd >= 0)
		close(sq->gc_lock_fd);
	pthread_mutex_destroy(&sq->pool_lock);
	pthread_cond_destroy(&sq->ckpt_cond);
	pthread_mutex_destroy(&sq->ckpt_lock);
	pthread_cond_destroy(&sq->sync_cond);
	pthread_mutex_destroy(&sq->sync_lock);
	free(sq->gc_done);
	free(sq->db_path);
	free(sq);
	st->be_state = NULL;
}

/* store.db holds password hashes: it and its -wal/-shm are 0600. SQLite
 * makes them 0644 (less the umask) and gives -wal/-shm the mode of
 * store.db, so store.db is made here, 0600, before SQLite opens it, and
 * files an older postern left 0644 are narrowed. A name that is a symbolic
 * link is left to SQLite as before. */
static int
db_files_private(const struct store *st, const struct sq_state *sq,
    char *err, size_t errlen)
{
	static const char *const names[] = { "store.db", "store.db-wal",
	    "store.db-shm" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat sb;
		int fd = openat(sq->data_fd, names[i], O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC | (i == 0 ? O_CREAT : 0), 0600);

		if (fd < 0) {
			if (errno == ENOENT || errno == ELOOP)
				continue;
			snprintf(err, errlen, "cannot open %s/%s: %s",
			    st->data_dir, names[i], strerror(errno));
			return -1;
		}
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (sb.st_mode & 077) != 0 &&
		    fchmod(fd, sb.st_mode & 0700) < 0)
			log_warn(NULL, "store.mode file=\"%s/%s\" error=\"%s\"",
			    st->data_dir, names[i], strerror(errno));
		close(fd);
	}
	return 0;
}

static int
sq_open(struct store *st, char *err, size_t errlen)
{
	struct sq_state *sq = xcalloc(1, sizeof(*sq));

	sq->data_fd = -1;
	sq->blobs_fd = -1;
	sq->gc_lock_fd = -1;
	pthread_mutex_init(&sq->pool_lock, NULL);
	pthread_mutex_init(&sq->ckpt_lock, NULL);
	pthread_cond_init(&sq->ckpt_cond, NULL);
	pthread_mutex_init(&sq->sync_lock, NULL);
	pthread_cond_init(&sq->sync_cond, NULL);
	st->be_state = sq;
	sq->db_path = xasprintf("%s/store.db", st->data_dir);
	if (dirs_make(sq, st->data_dir, err, errlen) < 0)
		goto fail;
	sq->gc_lock_fd = openat(sq->data_fd, SQ_GC_LOCK, O_RDWR | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sq->gc_lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s/%s: %s", st->data_dir,
		    SQ_GC_LOCK, strerror(errno));
		goto fail;
	}
	if (db_files_private(st, sq, err, errlen) < 0)
		goto fail;
	sq->writer = conn_open(sq->db_path, true, err, errlen);
	if (sq->writer == NULL)
		goto fail;
	if (schema_migrate(sq->writer, &sq->has_fts, err, errlen) < 0)
		goto fail;
	if (sq_gc_recover(st) < 0 || sq_orphans_recover(st) < 0) {
		snprintf(err, errlen, "cannot recover the store: %s",
		    sqlite3_errmsg(sq->writer->db));
		goto fail;
	}
	if (ckpt_start(sq, err, errlen) < 0 ||
	    sq_syncer_start(sq, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	sq_close(st);
	return -1;
}

/* ---- Reads ----------------------------------------------------------- */

/* Every read takes a connection, runs, and gives it back. */
#define READ_BEGIN(st, c, err_out)					\
	struct sq_conn *c = sq_reader_get(st);				\
	if (c == NULL) {						\
		*(err_out) = STORE_TEMP;				\
		return -1;						\
	}

static int
read_end(struct store *st, struct sq_conn *c, int rc, enum store_err err,
    enum store_err *err_out)
{
	sq_reader_put(st, c);
	*err_out = rc == 0 ? STORE_OK : err;
	return rc;
}

/* Appends a string to a NULL-terminated array being built. */
static void
strings_add(char ***list, size_t *n, char *s)
{
	*list = xrealloc(*list, (*n + 2) * sizeof(**list));
	(*list)[(*n)++] = s;
	(*list)[*n] = NULL;
}

static int
sq_domain_list(struct store *st, char ***names_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_DOMAIN_LIST);
	size_t n = 0;
	int rc = SQLITE_ERROR;

	*names_out = xcalloc(1, sizeof(**names_out));
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW)
		strings_add(names_out, &n, sq_text(s, 0));
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		store_strings_free(names_out);
		return read_end(st, c, -1, sq_err(c, rc, "domain_list"),
		    err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_subscription_list(struct store *st, int64_t account, char ***names_out,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_SUBSCRIPTION_LIST);
	size_t n = 0;
	int rc = SQLITE_ERROR;

	*names_out = xcalloc(1, sizeof(**names_out));
	if (s != NULL)
		sqlite3_bind_int64(s, 1, account);
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW)
		strings_add(names_out, &n, sq_text(s, 0));
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		store_strings_free(names_out);
		return read_end(st, c, -1, sq_err(c, rc, "subscription_list"),
		    err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_domain_get(struct store *st, const char *domain, char **catchall_out,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_DOMAIN_GET);
	int rc = SQLITE_ERROR;

	*catchall_out = NULL;
	if (s != NULL) {
		sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*catchall_out = sq_text(s, 1);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "domain_get"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

void
sq_account_row(sqlite3_stmt *s, struct store_account *a_out)
{
	a_out->id = sqlite3_column_int64(s, 0);
	a_out->address = sq_text(s, 1);
	a_out->display_name = sq_text(s, 2);
	a_out->password_hash = sq_text(s, 3);
	a_out->scram_sha256 = sq_text(s, 4);
	a_out->quota_bytes = (uint64_t)sqlite3_column_int64(s, 5);
	a_out->quota_messages = (uint64_t)sqlite3_column_int64(s, 6);
	a_out->is_enabled = sqlite3_column_int(s, 7) != 0;
	a_out->imap = (enum store_switch)sqlite3_column_int(s, 8);
	a_out->pop3 = (enum store_switch)sqlite3_column_int(s, 9);
	a_out->submission = (enum store_switch)sqlite3_column_int(s, 10);
	a_out->forward_to = sq_text(s, 11);
	a_out->is_forward_kept = sqlite3_column_int(s, 12) != 0;
	a_out->pop3_retention_days = (uint32_t)sqlite3_column_int64(s, 13);
	a_out->locked_until = sqlite3_column_int64(s, 14);
	a_out->created = sqlite3_column_int64(s, 15);
}

static int
sq_account_get(struct store *st, const char *address, int64_t id,
    struct store_account *a_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, address != NULL ? SQ_ACCOUNT_BY_ADDRESS :
	    SQ_ACCOUNT_BY_ID);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		if (address != NULL)
			sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			sq_account_row(s, a_out);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "account_get"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_account_list(struct store *st, const char *domain,
    struct store_account **list_out, size_t *n_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, domain != NULL ? SQ_ACCOUNT_LIST_DOMAIN :
	    SQ_ACCOUNT_LIST);
	size_t cap = 0;
	int rc = SQLITE_ERROR;

	if (s != NULL && domain != NULL)
		sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 16;
			*list_out = xrealloc(*list_out,
			    cap * sizeof(**list_out));
		}
		memset(&(*list_out)[*n_out], 0, sizeof(**list_out));
		sq_account_row(s, &(*list_out)[(*n_out)++]);
	}
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		store_account_list_free(list_out, *n_out);
		*n_out = 0;
		return read_end(st, c, -1, sq_err(c, rc, "account_list"),
		    err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_account_usage(struct store *st, int64_t account, uint64_t *bytes_out,
    uint64_t *messages_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_ACCOUNT_USAGE);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, account);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*bytes_out = (uint64_t)sqlite3_column_int64(s, 0);
			*messages_out = (uint64_t)sqlite3_column_int64(s, 1);
		}
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "account_usage"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_alias_targets(struct store *st, const char *address, char ***targets_out,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_ALIAS_TARGETS);
	size_t n = 0;
	int rc = SQLITE_ERROR;

	*targets_out = xcalloc(1, sizeof(**targets_out));
	if (s != NULL)
		sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW)
		strings_add(targets_out, &n, sq_text(s, 0));
	sq_reset(s);
	if (rc != SQLITE_DONE || n == 0) {
		store_strings_free(targets_out);
		return read_end(st, c, -1, rc != SQLITE_DONE ?
		    sq_err(c, rc, "alias_targets") : STORE_NOT_FOUND, err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_alias_list(struct store *st, char ***pairs_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_ALIAS_LIST);
	size_t n = 0;
	int rc = SQLITE_ERROR;

	*pairs_out = xcalloc(1, sizeof(**pairs_out));
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		strings_add(pairs_out, &n, sq_text(s, 0));
		strings_add(pairs_out, &n, sq_text(s, 1));
	}
	sq_reset(s);
	if (rc != SQLITE_DONE) {
		store_strings_free(pairs_out);
		return read_end(st, c, -1, sq_err(c, rc, "alias_list"),
		    err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

void
sq_mailbox_row(sqlite3_stmt *s, struct store_mailbox *mb_out)
{
	mb_out->id = sqlite3_column_int64(s, 0);
	mb_out->name = sq_text(s, 1);
	mb_out->uidvalidity = (uint32_t)sqlite3_column_int64(s, 2);
	mb_out->uidnext = (uint32_t)sqlite3_column_int64(s, 3);
	mb_out->highestmodseq = (uint64_t)sqlite3_column_int64(s, 4);
	mb_out->messages = (uint32_t)sqlite3_column_int64(s, 5);
	mb_out->unseen = (uint32_t)sqlite3_column_int64(s, 6);
	mb_out->size = (uint64_t)sqlite3_column_int64(s, 7);
	mb_out->special = (enum store_special)sqlite3_column_int(s, 8);
	mb_out->is_subscribed = sqlite3_column_int(s, 9) != 0;
	mb_out->has_children = sqlite3_column_int(s, 10) != 0;
}

static int
sq_mailbox_get(struct store *st, int64_t account, const char *name,
    struct store_mailbox *mb_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_MAILBOX_GET);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, account);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			sq_mailbox_row(s, mb_out);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "mailbox_get"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_mailbox_get_id(struct store *st, int64_t account, int64_t id,
    struct store_mailbox *mb_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_MAILBOX_GET_ID);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, account);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			sq_mailbox_row(s, mb_out);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "mailbox_get_id"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_subscription_has(struct store *st, int64_t account, const char *name,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_SUBSCRIPTION_HAS);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, account);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return read_end(st, c, 1, STORE_OK, err_out);
	if (rc == SQLITE_DONE)
		return read_end(st, c, 0, STORE_OK, err_out);
	return read_end(st, c, -1, sq_err(c, rc, "subscription_has"), err_out);
}

static int
sq_recent_get(struct store *st, int64_t mailbox, uint32_t uidvalidity,
    uint32_t *uid_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_RECENT_GET);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, uidvalidity);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*uid_out = (uint32_t)sqlite3_column_int64(s, 0);
	}
	sq_reset(s);
	if (rc == SQLITE_DONE)
		return read_end(st, c, -1, STORE_NOT_FOUND, err_out);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "recent_get"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_recent_count(struct store *st, int64_t mailbox, uint32_t uid,
    uint32_t *n_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_RECENT_COUNT);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, uid);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*n_out = (uint32_t)sqlite3_column_int64(s, 0);
	}
	sq_reset(s);
	if (rc != SQLITE_ROW)
		return read_end(st, c, -1, sq_err(c, rc, "recent_count"),
		    err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

/* Whether the row id of table (through stmt, one parameter) exists, in
 * the read transaction of c. Returns 1, 0, or -1 with *err_out set. */
static int
row_exists(struct sq_conn *c, enum sq_stmt id, int64_t key,
    enum store_err *err_out)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	int rc = SQLITE_ERROR;

	if (s != NULL) {
		sqlite3_bind_int64(s, 1, key);
		rc = sqlite3_step(s);
	}
	sq_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*err_out = sq_err(c, rc, "row_exists");
	return -1;
}

/* Reads every row stmt gives for account into a growing array of
 * elements of size bytes, each filled by row. STORE_NOT_FOUND when the
 * account does not exist. On -1 the caller frees what *list_out holds. */
static int
account_rows_read(struct store *st, int64_t account, enum sq_stmt stmt,
    size_t size, void (*row)(sqlite3_stmt *s, void *elem), const char *what,
    void **list_out, size_t *n_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s;
	enum store_err err = STORE_TEMP;
	size_t cap = 0;
	int rc = SQLITE_ERROR, exists;

	sq_exec(c, SQ_BEGIN_READ);
	exists = row_exists(c, SQ_ACCOUNT_EXISTS, account, &err);
	if (exists <= 0) {
		sq_exec(c, SQ_ROLLBACK);
		return read_end(st, c, -1, exists == 0 ? STORE_NOT_FOUND : err,
		    err_out);
	}
	s = sq_stmt(c, stmt);
	if (s != NULL)
		sqlite3_bind_int64(s, 1, account);
	while (s != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 16;
			*list_out = xrealloc(*list_out, cap * size);
		}
		row(s, (char *)*list_out + (*n_out)++ * size);
	}
	sq_reset(s);
	sq_exec(c, SQ_ROLLBACK);
	if (rc != SQLITE_DONE)
		return read_end(st, c, -1, sq_err(c, rc, what), err_out);
	return read_end(st, c, 0, STORE_OK, err_out);
}

static void
mailbox_row_any(sqlite3_stmt *s, void *elem)
{
	sq_mailbox_row(s, elem);
}

static int
sq_mailbox_list(struct store *st, int64_t account,
    struct store_mailbox **list_out, size_t *n_out, enum store_err *err_out)
{
	void *list = *list_out;

	if (account_rows_read(st, account, SQ_MAILBOX_LIST, sizeof(**list_out),
	    mailbox_row_any, "mailbox_list", &list, n_out, err_out) < 0) {
		*list_out = list;
		store_mailbox_list_free(list_out, *n_out);
		*n_out = 0;
		return -1;
	}
	*list_out = list;
	return 0;
}

static void
app_password_row(sqlite3_stmt *s, void *elem)
{
	struct store_app_password *p = elem;

	p->id = sqlite3_column_int64(s, 0);
	p->name = sq_text(s, 1);
	p->hash = sq_text(s, 2);
	p->protocols = (uint32_t)sqlite3_column_int64(s, 3);
	p->created = sqlite3_column_int64(s, 4);
	p->last_used = sqlite3_column_int64(s, 5);
	p->last_peer = sq_text(s, 6);
}

static int
sq_app_password_list(struct store *st, int64_t account,
    struct store_app_password **list_out, size_t *n_out,
    enum store_err *err_out)
{
	void *list = *list_out;

	if (account_rows_read(st, account, SQ_APP_PASSWORD_LIST,
	    sizeof(**list_out), app_password_row, "app_password_list", &list,
	    n_out, err_out) < 0) {
		*list_out = list;
		store_app_password_list_free(list_out, *n_out);
		*n_out = 0;
		return -1;
	}
	*list_out = list;
	return 0;
}

static void
msg_row(sqlite3_stmt *s, struct store_msg *m_out)
{
	m_out->uid = (uint32_t)sqlite3_column_int64(s, 0);
	m_out->modseq = (uint64_t)sqlite3_column_int64(s, 1);
	m_out->flags = (uint32_t)sqlite3_column_int64(s, 2);
	m_out->keywords = sq_text(s, 3);
	m_out->internal_date = sqlite3_column_int64(s, 4);
	m_out->size = (uint64_t)sqlite3_column_int64(s, 5);
	m_out->blob = sqlite3_column_int64(s, 6);
	m_out->retrieved = sqlite3_column_int64(s, 7);
	m_out->saved = sqlite3_column_int64(s, 8);
}

/* Steps s (bound) to the end, appending each row to *list_out. */
static int
msgs_read(sqlite3_stmt *s, struct store_msg **list_out, size_t *n_out)
{
	size_t cap = *n_out;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 64;
			*list_out = xrealloc(*list_out,
			    cap * sizeof(**list_out));
		}
		msg_row(s, &(*list_out)[(*n_out)++]);
	}
	sq_reset(s);
	return rc;
}

static int
sq_msg_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, struct store_msg **list_out, size_t *n_out,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s;
	enum store_err err = STORE_TEMP;
	int rc = SQLITE_ERROR, exists;

	sq_exec(c, SQ_BEGIN_READ);
	exists = row_exists(c, SQ_MAILBOX_EXISTS, mailbox, &err);
	if (exists <= 0) {
		sq_exec(c, SQ_ROLLBACK);
		return read_end(st, c, -1, exists == 0 ? STORE_NOT_FOUND : err,
		    err_out);
	}
	s = sq_stmt(c, SQ_MSG_LIST);
	if (s != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, uid_min);
		sqlite3_bind_int64(s, 3, uid_max);
		rc = msgs_read(s, list_out, n_out);
	}
	sq_exec(c, SQ_ROLLBACK);
	if (rc != SQLITE_DONE) {
		store_msg_list_free(list_out, *n_out);
		*n_out = 0;
		return read_end(st, c, -1, sq_err(c, rc, "msg_list"), err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_msg_changes(struct store *st, int64_t mailbox, uint64_t modseq,
    struct store_msg **changed_out, size_t *nchanged_out,
    uint32_t **expunged_out, size_t *nexpunged_out,
    uint64_t *highestmodseq_out, enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s;
	enum store_err err = STORE_TEMP;
	size_t cap = 0;
	int rc = SQLITE_ERROR, exists;

	/* One read transaction: the changed and the expunged lists come
	 * from the same snapshot. */
	sq_exec(c, SQ_BEGIN_READ);
	exists = row_exists(c, SQ_MAILBOX_EXISTS, mailbox, &err);
	if (exists <= 0) {
		sq_exec(c, SQ_ROLLBACK);
		return read_end(st, c, -1, exists == 0 ? STORE_NOT_FOUND : err,
		    err_out);
	}
	if (highestmodseq_out != NULL &&
	    (s = sq_stmt(c, SQ_MAILBOX_MODSEQ)) != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		if (sqlite3_step(s) == SQLITE_ROW)
			*highestmodseq_out =
			    (uint64_t)sqlite3_column_int64(s, 0);
		sq_reset(s);
	}
	if ((s = sq_stmt(c, SQ_MSG_CHANGED)) != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, (int64_t)modseq);
		rc = msgs_read(s, changed_out, nchanged_out);
	}
	if (rc == SQLITE_DONE && (s = sq_stmt(c, SQ_MSG_EXPUNGED)) != NULL) {
		sqlite3_bind_int64(s, 1, mailbox);
		sqlite3_bind_int64(s, 2, (int64_t)modseq);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (*nexpunged_out == cap) {
				cap = cap ? cap * 2 : 64;
				*expunged_out = xrealloc(*expunged_out,
				    cap * sizeof(**expunged_out));
			}
			(*expunged_out)[(*nexpunged_out)++] =
			    (uint32_t)sqlite3_column_int64(s, 0);
		}
		sq_reset(s);
	}
	sq_exec(c, SQ_ROLLBACK);
	if (rc != SQLITE_DONE) {
		store_msg_list_free(changed_out, *nchanged_out);
		*nchanged_out = 0;
		free(*expunged_out);
		*expunged_out = NULL;
		*nexpunged_out = 0;
		return read_end(st, c, -1, sq_err(c, rc, "msg_changes"),
		    err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

/* Parts are kept as lines "section header_off body_off end_off". */
static void
parts_parse(const char *text, struct store_structure *s_out)
{
	size_t cap = 0;

	while (text != NULL && *text != '\0') {
		const char *sp = strchr(text, ' ');
		const char *nl = strchr(text, '\n');
		unsigned long long h, b, e;
		struct store_part *p;

		if (sp == NULL || nl == NULL || sp > nl ||
		    sscanf(sp + 1, "%llu %llu %llu", &h, &b, &e) != 3)
			break;
		if (s_out->nparts == cap) {
			cap = cap ? cap * 2 : 4;
			s_out->parts = xrealloc(s_out->parts,
			    cap * sizeof(*s_out->parts));
		}
		p = &s_out->parts[s_out->nparts++];
		p->section = xstrndup(text, (size_t)(sp - text));
		p->header_off = h;
		p->body_off = b;
		p->end_off = e;
		text = nl + 1;
	}
}

static int
sq_blob_structures(struct store *st, const int64_t *blobs, size_t n,
    struct store_structure *s_out, bool *is_found_out,
    enum store_err *err_out)
{
	READ_BEGIN(st, c, err_out);
	sqlite3_stmt *s = sq_stmt(c, SQ_STRUCTURE_GET);

	if (s == NULL)
		return read_end(st, c, -1, sq_err(c, SQLITE_ERROR,
		    "blob_structure"), err_out);
	for (size_t i = 0; i < n; i++) {
		int rc;

		sqlite3_bind_int64(s, 1, blobs[i]);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			s_out[i].envelope = sq_text(s, 0);
			s_out[i].bodystructure = sq_text(s, 1);
			s_out[i].body = sq_text(s, 2);
			parts_parse((const char *)sqlite3_column_text(s, 3),
			    &s_out[i]);
			s_out[i].date = sqlite3_column_int64(s, 4);
			s_out[i].preview = sq_text(s, 5);
			is_found_out[i] = true;
		}
		sq_reset(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return read_end(st, c, -1, sq_err(c, rc,
			    "blob_structure"), err_out);
	}
	return read_end(st, c, 0, STORE_OK, err_out);
}

static int
sq_blob_open(struct store *st, int64_t blob, enum store_err *err_out)
{
	char name[32];
	int fd;

	if (blob <= 0) {
		*err_out = STORE_NOT_FOUND;
		return -1;
	}
	sq_blob_name(blob, name, sizeof(name));
	fd = openat(sq_state(st)->blobs_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* ENOENT: expunged meanwhile (the file goes right after the
		 * commit), or an id that never was. */
		*err_out = errno == ENOENT ? STORE_NOT_FOUND : STORE_TEMP;
		if (errno != ENOENT)
			log_error(NULL, "store.blob_open blob=%" PRId64
			    " error=\"%s\"", blob, strerror(errno));
		return -1;
	}
	*err_out = STORE_OK;
	return fd;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.batch_run = sq_batch_run,
	.idle = sq_idle,
	.domain_list = sq_domain_list,
	.domain_get = sq_domain_get,
	.account_get = sq_account_get,
	.account_list = sq_account_list,
	.account_usage = sq_account_usage,
	.alias_targets = sq_alias_targets,
	.alias_list = sq_alias_list,
	.app_password_list = sq_app_password_list,
	.mailbox_get = sq_mailbox_get,
	.mailbox_get_id = sq_mailbox_get_id,
	.mailbox_list = sq_mailbox_list,
	.msg_list = sq_msg_list,
	.msg_changes = sq_msg_changes,
	.blob_structures = sq_blob_structures,
	.blob_open = sq_blob_open,
	.snapshot = sq_snapshot,
	.blob_link = sq_blob_link,
	.search = sq_search,
	.sort_list = sq_sort_list,
	.subscription_list = sq_subscription_list,
	.subscription_has = sq_subscription_has,
	.queue_list = sq_queue_list,
	.queue_stats = sq_queue_stats,
	.queue_get = sq_queue_get,
	.migrate_list = sq_migrate_list,
	.migrate_folder_get = sq_migrate_folder_get,
	.metadata_list = sq_metadata_list,
	.acl_rights = sq_acl_rights,
	.acl_list = sq_acl_list,
	.acl_shared_list = sq_acl_shared_list,
	.recent_get = sq_recent_get,
	.recent_count = sq_recent_count,
};
