/*
 * store_sqlite: what the files of the embedded backend share (and only
 * they: this is the one header that includes sqlite3.h). Connections with
 * their cached prepared statements, the backend's state, and the layout of
 * DATA: store.db (WAL), blobs/xx/<id> (one immutable file per message
 * body), tmp/ (bodies being received).
 *
 * Threads. The writer connection belongs to the writer thread (and to
 * open and close). Read connections sit in a pool; a reader takes one for
 * the length of one call, so a connection is never used by two threads at
 * once (they are opened SQLITE_OPEN_NOMUTEX).
 */
#ifndef POSTERN_STORE_SQLITE_H
#define POSTERN_STORE_SQLITE_H

#include <sqlite3.h>
#include <time.h>

#include "store/store_backend.h"

/* The schema this code reads and writes (store_sqlite.c migrates older
 * stores); a backup records it. */
extern const int sq_schema_version;

#define SQ_ACCOUNT_COLS							\
	"id, address, display_name, password_hash, scram_sha256, "	\
	"quota_bytes, quota_messages, is_enabled, imap, pop3, submission, " \
	"forward_to, is_forward_kept, pop3_retention_days, locked_until, " \
	"created"
#define SQ_MAILBOX_COLS							\
	"m.id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, "	\
	"m.messages, m.unseen, m.size, m.special, "			\
	"EXISTS (SELECT 1 FROM subscriptions u WHERE u.account = m.account " \
	"AND u.name = m.name), "					\
	"EXISTS (SELECT 1 FROM mailboxes c WHERE c.account = m.account " \
	"AND c.name > m.name || '/' AND c.name < m.name || '0')"
#define SQ_MSG_COLS							\
	"uid, modseq, flags, keywords, internal_date, size, blob, retrieved, " \
	"coalesce(saved, 0)"
#define SQ_QUEUE_COLS							\
	"q.id, q.blob, coalesce(b.size, 0), q.sender, q.rcpt, "	\
	"q.dsn_envelope, q.dsn_rcpt, q.attempts, q.created, "		\
	"q.next_attempt, q.lease_until, q.last_error, q.held, q.warned, " \
	"q.authenticated, q.report "					\
	"FROM queue q LEFT JOIN blobs b ON b.id = q.blob"

/* Every statement the backend prepares once per connection. */
#define SQ_STMTS(X)							\
	X(BEGIN_READ, "BEGIN")						\
	X(BEGIN_WRITE, "BEGIN IMMEDIATE")				\
	X(COMMIT, "COMMIT")						\
	X(ROLLBACK, "ROLLBACK")						\
	X(SAVEPOINT, "SAVEPOINT req")					\
	X(RELEASE, "RELEASE req")					\
	X(ROLLBACK_TO, "ROLLBACK TO req")				\
	X(META_GET, "SELECT value FROM meta WHERE key = ?1")		\
	X(META_SET, "INSERT INTO meta(key, value) VALUES (?1, ?2) "	\
	    "ON CONFLICT(key) DO UPDATE SET value = excluded.value")	\
	X(DOMAIN_LIST, "SELECT name FROM domains ORDER BY name")	\
	X(DOMAIN_GET, "SELECT id, catchall FROM domains WHERE name = ?1") \
	X(DOMAIN_INSERT, "INSERT INTO domains(name) VALUES (?1)")	\
	X(DOMAIN_ACCOUNTS, "SELECT count(*) FROM accounts "		\
	    "WHERE domain = ?1")					\
	X(DOMAIN_DELETE, "DELETE FROM domains WHERE id = ?1")		\
	X(DOMAIN_ALIASES_DELETE, "DELETE FROM aliases WHERE domain = ?1") \
	X(CATCHALL_SET, "UPDATE domains SET catchall = ?2 WHERE id = ?1") \
	X(ACCOUNT_BY_ADDRESS, "SELECT " SQ_ACCOUNT_COLS " FROM accounts " \
	    "WHERE address = ?1")					\
	X(ACCOUNT_BY_ID, "SELECT " SQ_ACCOUNT_COLS " FROM accounts "	\
	    "WHERE id = ?1")						\
	X(ACCOUNT_LIST, "SELECT " SQ_ACCOUNT_COLS " FROM accounts "	\
	    "ORDER BY address")						\
	X(ACCOUNT_LIST_DOMAIN, "SELECT " SQ_ACCOUNT_COLS " FROM accounts " \
	    "WHERE domain = (SELECT id FROM domains WHERE name = ?1) "	\
	    "ORDER BY address")						\
	X(ACCOUNT_USAGE, "SELECT used_bytes, used_messages, quota_bytes, " \
	    "quota_messages FROM accounts WHERE id = ?1")		\
	X(ACCOUNT_INSERT, "INSERT INTO accounts(address, domain, "	\
	    "display_name, password_hash, scram_sha256, quota_bytes, "	\
	    "quota_messages, is_enabled, imap, pop3, submission, "	\
	    "forward_to, is_forward_kept, pop3_retention_days, "	\
	    "locked_until, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " \
	    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)")		\
	X(ACCOUNT_UPDATE, "UPDATE accounts SET display_name = ?3, "	\
	    "password_hash = ?4, scram_sha256 = ?5, quota_bytes = ?6, "	\
	    "quota_messages = ?7, is_enabled = ?8, imap = ?9, pop3 = ?10, " \
	    "submission = ?11, forward_to = ?12, is_forward_kept = ?13, " \
	    "pop3_retention_days = ?14, locked_until = ?15 WHERE id = ?1") \
	X(ACCOUNT_MESSAGES_DELETE, "DELETE FROM messages WHERE mailbox IN " \
	    "(SELECT id FROM mailboxes WHERE account = ?1)")		\
	X(ACCOUNT_EXPUNGED_DELETE, "DELETE FROM expunged WHERE mailbox IN " \
	    "(SELECT id FROM mailboxes WHERE account = ?1)")		\
	X(ACCOUNT_MAILBOXES_DELETE, "DELETE FROM mailboxes "		\
	    "WHERE account = ?1")					\
	X(ACCOUNT_DELETE, "DELETE FROM accounts WHERE id = ?1")		\
	X(ACCOUNT_EXISTS, "SELECT 1 FROM accounts WHERE id = ?1")	\
	X(ALIAS_TARGETS, "SELECT target FROM aliases WHERE address = ?1 " \
	    "ORDER BY target")						\
	X(ALIAS_LIST, "SELECT address, target FROM aliases "		\
	    "ORDER BY address, target")					\
	X(ALIAS_INSERT, "INSERT INTO aliases(address, target, domain) "	\
	    "VALUES (?1, ?2, ?3)")					\
	X(ALIAS_DELETE_ONE, "DELETE FROM aliases WHERE address = ?1 "	\
	    "AND target = ?2")						\
	X(ALIAS_DELETE_ALL, "DELETE FROM aliases WHERE address = ?1")	\
	X(MAILBOX_GET, "SELECT " SQ_MAILBOX_COLS " FROM mailboxes m "	\
	    "WHERE m.account = ?1 AND m.name = ?2")			\
	X(MAILBOX_GET_ID, "SELECT " SQ_MAILBOX_COLS " FROM mailboxes m " \
	    "WHERE m.id = ?1 AND m.account = ?2")			\
	X(METADATA_LIST, "SELECT name, value FROM metadata "		\
	    "WHERE mailbox = ?1 AND (account = ?2 OR (?1 = 0 AND "	\
	    "account = 0)) ORDER BY name")				\
	X(METADATA_PUT, "INSERT INTO metadata(account, mailbox, name, " \
	    "value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(account, mailbox, " \
	    "name) DO UPDATE SET value = excluded.value")		\
	X(METADATA_DEL, "DELETE FROM metadata WHERE account = ?1 AND "	\
	    "mailbox = ?2 AND name = ?3")				\
	X(METADATA_COUNT, "SELECT count(*), coalesce(sum(length(value)), 0) " \
	    "FROM metadata WHERE account = ?1")				\
	X(METADATA_MAILBOX, "SELECT 1 FROM mailboxes WHERE id = ?1 AND " \
	    "account = ?2")						\
	X(METADATA_SPECIAL, "UPDATE mailboxes SET special = ?2 WHERE id = ?1") \
	X(ACL_OWNER, "SELECT account FROM mailboxes WHERE id = ?1")	\
	X(ACL_ROWS, "SELECT grantee, negative, rights FROM acl "	\
	    "WHERE mailbox = ?1 AND grantee IN (?2, 0)")		\
	X(ACL_LIST, "SELECT l.grantee, a.address, l.negative, l.rights " \
	    "FROM acl l LEFT JOIN accounts a ON a.id = l.grantee "	\
	    "WHERE l.mailbox = ?1 "					\
	    "ORDER BY l.negative, l.grantee != 0, a.address")		\
	X(ACL_SHARED, "SELECT " SQ_MAILBOX_COLS ", m.account, o.address, " \
	    "l.negative, l.rights FROM acl l "				\
	    "JOIN mailboxes m ON m.id = l.mailbox "			\
	    "JOIN accounts o ON o.id = m.account "			\
	    "WHERE l.grantee IN (?1, 0) AND m.account != ?1 "		\
	    "ORDER BY o.address, m.name")				\
	X(ACL_GET, "SELECT rights FROM acl WHERE mailbox = ?1 "	\
	    "AND grantee = ?2 AND negative = ?3")			\
	X(ACL_PUT, "INSERT INTO acl(mailbox, grantee, negative, rights) " \
	    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(mailbox, grantee, "	\
	    "negative) DO UPDATE SET rights = excluded.rights")	\
	X(ACL_INHERIT, "INSERT OR IGNORE INTO acl(mailbox, grantee, "	\
	    "negative, rights) SELECT c.id, l.grantee, l.negative, "	\
	    "l.rights FROM mailboxes c JOIN mailboxes p "		\
	    "ON p.account = c.account AND p.name = ?3 "		\
	    "JOIN acl l ON l.mailbox = p.id "				\
	    "WHERE c.account = ?1 AND c.name = ?2")			\
	X(ACL_DROP, "DELETE FROM acl WHERE mailbox = ?1 "		\
	    "AND grantee = ?2 AND negative = ?3")			\
	X(MAILBOX_LIST, "SELECT " SQ_MAILBOX_COLS " FROM mailboxes m "	\
	    "WHERE m.account = ?1 ORDER BY m.name")			\
	X(MAILBOX_EXISTS, "SELECT 1 FROM mailboxes WHERE id = ?1")	\
	X(MAILBOX_MODSEQ, "SELECT highestmodseq FROM mailboxes "	\
	    "WHERE id = ?1")						\
	X(RECENT_GET, "SELECT recent_uid FROM mailboxes "		\
	    "WHERE id = ?1 AND uidvalidity = ?2")			\
	X(RECENT_COUNT, "SELECT count(*) FROM messages "		\
	    "WHERE mailbox = ?1 AND uid >= ?2")				\
	X(RECENT_SET, "UPDATE mailboxes SET recent_uid = "		\
	    "max(recent_uid, ?3) WHERE id = ?1 AND uidvalidity = ?2")	\
	X(MAILBOX_ROW, "SELECT id, uidvalidity, uidnext, highestmodseq " \
	    "FROM mailboxes WHERE account = ?1 AND name = ?2")		\
	X(MAILBOX_SPECIAL_ROW, "SELECT id, uidvalidity, uidnext, "	\
	    "highestmodseq FROM mailboxes WHERE account = ?1 AND "	\
	    "special = ?2 ORDER BY id LIMIT 1")				\
	X(MAILBOX_BY_ID, "SELECT account, uidvalidity, uidnext, "	\
	    "highestmodseq FROM mailboxes WHERE id = ?1")		\
	X(MAILBOX_INSERT, "INSERT INTO mailboxes(account, name, "	\
	    "uidvalidity, special, subscribed) VALUES (?1, ?2, ?3, ?4, ?5)") \
	X(MAILBOX_CHILDREN, "SELECT id, name FROM mailboxes "		\
	    "WHERE account = ?1 AND name > ?2 || '/' AND name < ?2 || '0'") \
	X(MAILBOX_RENAME, "UPDATE mailboxes SET name = ?2 WHERE id = ?1") \
	X(MAILBOX_MESSAGES_DELETE, "DELETE FROM messages WHERE mailbox = ?1") \
	X(MAILBOX_EXPUNGED_DELETE, "DELETE FROM expunged WHERE mailbox = ?1") \
	X(MAILBOX_DELETE, "DELETE FROM mailboxes WHERE id = ?1")	\
	X(SUBSCRIPTION_ADD, "INSERT OR IGNORE INTO subscriptions(account, " \
	    "name) VALUES (?1, ?2)")					\
	X(SUBSCRIPTION_DEL, "DELETE FROM subscriptions "		\
	    "WHERE account = ?1 AND name = ?2")				\
	X(SUBSCRIPTION_RENAME, "UPDATE OR REPLACE subscriptions "	\
	    "SET name = ?3 || substr(name, length(?2) + 1) "		\
	    "WHERE account = ?1 AND (name = ?2 OR "			\
	    "(name > ?2 || '/' AND name < ?2 || '0'))")			\
	X(SUBSCRIPTION_LIST, "SELECT name FROM subscriptions "		\
	    "WHERE account = ?1 ORDER BY name")				\
	X(SUBSCRIPTION_HAS, "SELECT 1 FROM subscriptions "		\
	    "WHERE account = ?1 AND name = ?2")				\
	X(ACCOUNT_SUBSCRIPTIONS_DELETE, "DELETE FROM subscriptions "	\
	    "WHERE account = ?1")					\
	X(MAILBOX_BUMP, "UPDATE mailboxes SET uidnext = ?2, "		\
	    "highestmodseq = ?3 WHERE id = ?1")				\
	X(MAILBOX_EXPUNGE_ALL, "INSERT INTO expunged(mailbox, uid, modseq) " \
	    "SELECT mailbox, uid, ?2 FROM messages WHERE mailbox = ?1")	\
	X(MAILBOX_MOVE_ALL, "UPDATE messages SET mailbox = ?2 "		\
	    "WHERE mailbox = ?1")					\
	X(MSG_LIST, "SELECT " SQ_MSG_COLS " FROM messages "		\
	    "WHERE mailbox = ?1 AND uid BETWEEN ?2 AND ?3 "		\
	    "ORDER BY uid")						\
	/* INDEXED BY: without statistics the planner scans the whole \
	 * mailbox by UID to skip a sort of the few rows changed. */	\
	X(MSG_CHANGED, "SELECT " SQ_MSG_COLS " FROM messages "		\
	    "INDEXED BY messages_modseq "				\
	    "WHERE mailbox = ?1 AND modseq > ?2 ORDER BY uid")		\
	X(MSG_EXPUNGED, "SELECT uid FROM expunged "			\
	    "INDEXED BY expunged_modseq WHERE mailbox = ?1 "		\
	    "AND modseq > ?2 ORDER BY uid")				\
	X(MSG_GET, "SELECT " SQ_MSG_COLS " FROM messages "		\
	    "WHERE mailbox = ?1 AND uid = ?2")				\
	X(MSG_INSERT, "INSERT INTO messages(mailbox, uid, blob, modseq, " \
	    "flags, keywords, internal_date, size, retrieved, saved) "	\
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")	\
	X(MSG_SET_FLAGS, "UPDATE messages SET flags = ?3, keywords = ?4, " \
	    "modseq = ?5 WHERE mailbox = ?1 AND uid = ?2")		\
	X(MSG_DELETE, "DELETE FROM messages WHERE mailbox = ?1 AND uid = ?2") \
	X(MSG_RETRIEVED, "UPDATE messages SET retrieved = ?3 "		\
	    "WHERE mailbox = ?1 AND uid = ?2 AND retrieved = 0")	\
	X(EXPUNGED_INSERT, "INSERT INTO expunged(mailbox, uid, modseq) " \
	    "VALUES (?1, ?2, ?3)")					\
	X(BLOB_INSERT, "INSERT INTO blobs(id, size) VALUES (?1, ?2)")	\
	X(BLOB_SIZE, "SELECT size FROM blobs WHERE id = ?1")		\
	X(STRUCTURE_INSERT, "INSERT INTO structures(blob, envelope, "	\
	    "bodystructure, body, parts, date, subject, from_, to_, cc, " \
	    "bcc, message_id, in_reply_to, refs, preview, date_local) "	\
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, " \
	    "?13, ?14, ?15, ?16)")					\
	X(SORT_LIST, "SELECT m.uid, m.internal_date, m.size, s.date, "	\
	    "CASE WHEN ?4 & 1 THEN s.subject END, "			\
	    "CASE WHEN ?4 & 2 THEN s.envelope END, "			\
	    "CASE WHEN ?4 & 4 THEN s.message_id END, "			\
	    "CASE WHEN ?4 & 4 THEN s.in_reply_to END, "			\
	    "CASE WHEN ?4 & 4 THEN s.refs END, "			\
	    "m.blob, CASE WHEN ?4 & 4 THEN s.blob IS NOT NULL "		\
	    "AND s.refs IS NULL END FROM messages m "			\
	    "LEFT JOIN structures s "					\
	    "ON s.blob = m.blob WHERE m.mailbox = ?1 "			\
	    "AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid")		\
	X(STRUCTURE_GET, "SELECT envelope, bodystructure, body, parts, " \
	    "date, preview FROM structures WHERE blob = ?1")		\
	X(TEXT_INSERT, "INSERT INTO texts(blob, headers, body) "	\
	    "VALUES (?1, ?2, ?3)")					\
	X(GC_LIST, "SELECT id FROM blob_gc")				\
	X(GC_DELETE, "DELETE FROM blob_gc WHERE id = ?1")		\
	X(FTS_PENDING, "SELECT blob, headers, body FROM texts "		\
	    "WHERE blob > ?1 ORDER BY blob LIMIT ?2")			\
	X(FTS_INSERT, "INSERT INTO fts(rowid, headers, body) "		\
	    "VALUES (?1, ?2, ?3)")					\
	X(QUEUE_INSERT, "INSERT INTO queue(blob, sender, rcpt, "	\
	    "dsn_envelope, dsn_rcpt, created, next_attempt, "		\
	    "authenticated, report) "					\
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)")		\
	X(APP_PASSWORD_INSERT, "INSERT INTO app_passwords(account, name, " \
	    "hash, protocols, created) VALUES (?1, ?2, ?3, ?4, ?5)")	\
	X(APP_PASSWORD_LIST, "SELECT id, name, hash, protocols, created, " \
	    "last_used, last_peer FROM app_passwords WHERE account = ?1 " \
	    "ORDER BY name")						\
	X(APP_PASSWORD_REVOKE, "DELETE FROM app_passwords "		\
	    "WHERE account = ?1 AND name = ?2")				\
	X(APP_PASSWORD_TOUCH, "UPDATE app_passwords SET last_used = ?2, " \
	    "last_peer = ?3 WHERE id = ?1")				\
	X(ACCOUNT_APP_PASSWORDS_DELETE, "DELETE FROM app_passwords "	\
	    "WHERE account = ?1")					\
	X(QUEUE_LIST, "SELECT " SQ_QUEUE_COLS " ORDER BY q.id")		\
	X(QUEUE_GET, "SELECT " SQ_QUEUE_COLS " WHERE q.id = ?1")	\
	X(QUEUE_STATS, "SELECT count(*), coalesce(min(created), 0) "	\
	    "FROM queue")						\
	X(QUEUE_DUE, "SELECT " SQ_QUEUE_COLS " WHERE q.held = 0 "	\
	    "AND q.next_attempt <= ?1 AND q.lease_until <= ?1 "	\
	    "ORDER BY q.next_attempt, q.blob, q.id LIMIT ?2")		\
	X(QUEUE_LEASE, "UPDATE queue SET lease_until = ?2 WHERE id = ?1") \
	X(QUEUE_UNLEASE_ALL, "UPDATE queue SET lease_until = 0 "	\
	    "WHERE lease_until != 0")					\
	X(QUEUE_DELETE, "DELETE FROM queue WHERE id = ?1")		\
	X(QUEUE_DELETE_ALL, "DELETE FROM queue")			\
	X(QUEUE_DEFER, "UPDATE queue SET attempts = attempts + 1, "	\
	    "last_error = ?2, next_attempt = ?3, lease_until = 0 "	\
	    "WHERE id = ?1")						\
	X(QUEUE_WARNED, "UPDATE queue SET warned = 1 WHERE id = ?1")	\
	X(QUEUE_HOLD, "UPDATE queue SET held = ?2 WHERE id = ?1")	\
	X(QUEUE_HOLD_ALL, "UPDATE queue SET held = ?1 WHERE held != ?1") \
	X(QUEUE_RETRY, "UPDATE queue SET held = 0, next_attempt = ?2 "	\
	    "WHERE id = ?1")						\
	X(QUEUE_RELEASE, "UPDATE queue SET held = 0, next_attempt = ?2 " \
	    "WHERE id = ?1 AND held != 0")				\
	X(QUEUE_RELEASE_ALL, "UPDATE queue SET held = 0, "		\
	    "next_attempt = ?1 WHERE held != 0")			\
	X(QUEUE_RETRY_ALL, "UPDATE queue SET next_attempt = ?1 "	\
	    "WHERE held = 0 AND next_attempt > ?1")			\
	X(MIGRATE_LIST, "SELECT uidvalidity, key, mailbox, uid, flags, " \
	    "keywords, message_id, hash, size FROM migrate_map "	\
	    "WHERE account = ?1 AND source = ?2 AND folder = ?3 "	\
	    "ORDER BY uidvalidity, key")				\
	X(MIGRATE_PUT, "INSERT OR REPLACE INTO migrate_map(account, "	\
	    "source, folder, uidvalidity, key, mailbox, uid, flags, "	\
	    "keywords, message_id, hash, size) VALUES (?1, ?2, ?3, ?4, " \
	    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")			\
	X(MIGRATE_DEL, "DELETE FROM migrate_map WHERE account = ?1 "	\
	    "AND source = ?2 AND folder = ?3 AND uidvalidity = ?4 "	\
	    "AND (?5 IS NULL OR key = ?5)")				\
	X(MIGRATE_FOLDER_GET, "SELECT uidvalidity, modseq FROM "	\
	    "migrate_folders WHERE account = ?1 AND source = ?2 "	\
	    "AND folder = ?3")						\
	X(MIGRATE_FOLDER_SET, "INSERT OR REPLACE INTO migrate_folders(" \
	    "account, source, folder, uidvalidity, modseq) VALUES (?1, " \
	    "?2, ?3, ?4, ?5)")						\
	X(ACCOUNT_MIGRATE_MAP_DELETE, "DELETE FROM migrate_map "	\
	    "WHERE account = ?1")					\
	X(ACCOUNT_MIGRATE_FOLDERS_DELETE, "DELETE FROM migrate_folders " \
	    "WHERE account = ?1")

#define SQ_STMT_ENUM(name, sql) SQ_##name,
enum sq_stmt {
	SQ_STMTS(SQ_STMT_ENUM)
	SQ_STMT_COUNT
};
#undef SQ_STMT_ENUM

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQ_STMT_COUNT];
	struct sq_conn *next;	/* in the pool of idle readers */
	/* A statement failed with SQLITE_FULL since the writer last
	 * cleared this: the attempt failed for want of disk space. */
	bool is_full;
};

struct sq_state {
	char *db_path;
	int data_fd;		/* DATA, for syncfs(2) */
	int blobs_fd;		/* DATA/blobs */
	/* DATA/gc.lock: a backup holds it shared while it copies, and body
	 * files are unlinked only under it exclusively (sq_gc_lock), so
	 * that no file a backup's snapshot names goes before it is
	 * copied (store_sqlite_backup.c). */
	int gc_lock_fd;
	/* When GC first found gc.lock held by a backup (0: it was not), and
	 * when that was last logged at warn level (writer thread only). */
	time_t gc_paused_since, gc_paused_warned;
	bool has_fts;		/* FTS5 with the trigram tokenizer */
	struct sq_conn *writer;
	pthread_mutex_t pool_lock;
	struct sq_conn *pool;	/* idle read connections */
	/* The checkpointer: a thread with its own connection that copies
	 * the WAL into the database beside the writer (store_sqlite.c).
	 * ckpt_lock guards the three fields after it. */
	struct sq_conn *ckpt;
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	int wal_frames;		/* WAL size after the last commit */
	bool is_ckpt_stopping;
	/* The syncer: a thread that makes a batch's files durable while the
	 * writer runs the batch's SQL (store_sqlite_write.c). sync_lock
	 * guards the fields after it. */
	pthread_t sync_thread;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	struct sq_sync_job *sync_job;
	bool is_sync_started;
	bool is_sync_stopping;
	/* Blob files unlinked after a commit whose blob_gc rows the next
	 * transaction drops (writer thread). */
	int64_t *gc_done;
	size_t ngc_done, gc_done_cap;
};

static inline struct sq_state *
sq_state(struct store *st)
{
	return st->be_state;
}

/* The statement id of c, prepared on first use; use it, then sq_reset().
 * NULL (logged) if it cannot be prepared. */
sqlite3_stmt *sq_stmt(struct sq_conn *c, enum sq_stmt id);
void sq_reset(sqlite3_stmt *s);
/* Runs a statement without results; returns the sqlite result code. */
int sq_exec(struct sq_conn *c, enum sq_stmt id);
/* Logs a failed SQLite call and says what it means for a caller. */
enum store_err sq_err(struct sq_conn *c, int rc, const char *what);
/* Column i as a new string, or NULL. */
char *sq_text(sqlite3_stmt *s, int i);
int sq_meta_get(struct sq_conn *c, const char *key, int64_t *value_out);
int sq_meta_set(struct sq_conn *c, const char *key, int64_t value);

/* A read connection from the pool, and back. NULL (logged) if none can
 * be opened. */
struct sq_conn *sq_reader_get(struct store *st);
void sq_reader_put(struct store *st, struct sq_conn *c);

/* The file of blob id: DATA/blobs/xx/<id>, xx = (id >> 8) & 0xff in hex,
 * relative to blobs_fd. */
void sq_blob_name(int64_t id, char *buf, size_t len);

/* Fills *a_out from a row of SQ_ACCOUNT_COLS. */
void sq_account_row(sqlite3_stmt *s, struct store_account *a_out);

/* The name of the lock file in DATA that pauses the unlinking of body
 * files while a backup runs. */
#define SQ_GC_LOCK "gc.lock"

/* Tries to take the GC lock exclusively, without waiting: true when body
 * files may be unlinked now (then call sq_gc_unlock), false while a
 * backup holds it (the files stay for a later try). */
bool sq_gc_trylock(struct sq_state *sq);
void sq_gc_unlock(struct sq_state *sq);

/* Backup (store_sqlite_backup.c). */
int sq_snapshot(struct store *st, struct store_snapshot *snap,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    char *err, size_t errlen);
int sq_blob_link(struct store *st, int64_t blob, int dirfd,
    const char *name);

/* Writer (store_sqlite_write.c). */
int sq_syncer_start(struct sq_state *sq, char *err, size_t errlen);
void sq_syncer_stop(struct sq_state *sq);
void sq_batch_run(struct store *st, struct store_req **reqs, size_t n);
bool sq_idle(struct store *st);
/* Unlinks the files of blob_gc rows and drops the rows; at open. */
int sq_gc_recover(struct store *st);
/* Unlinks body files a crashed batch renamed but never committed. */
int sq_orphans_recover(struct store *st);

/* store_check (store_sqlite_check.c), on the writer thread. */
int sq_check(struct store *st, bool is_repair,
    void (*report)(void *arg, const char *line), void *arg);

/* The outbound queue (store_sqlite_queue.c). */
int sq_queue_stats(struct store *st, uint64_t *n_out, int64_t *oldest_out,
    enum store_err *err_out);
int sq_queue_list(struct store *st, struct store_queue_entry **list_out,
    size_t *n_out, enum store_err *err_out);
int sq_queue_get(struct store *st, int64_t id,
    struct store_queue_entry *e_out, enum store_err *err_out);
/* Writer thread: runs req->qop inside the batch's transaction. */
enum store_err sq_queue_apply(struct sq_conn *c, struct store_req *req);
/* The migration map (store_sqlite_migrate.c): reads, the writer's
 * STORE_REQ_MIGRATE, and the entry a delivery carries, written in the
 * delivery's transaction for the recipient that got mailbox and uid. */
int sq_migrate_list(struct store *st, int64_t account, const char *source,
    const char *folder, struct store_migrate_entry **list_out, size_t *n_out,
    enum store_err *err_out);
int sq_migrate_folder_get(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t *uidvalidity_out,
    uint64_t *modseq_out, enum store_err *err_out);
enum store_err sq_migrate_apply(struct sq_conn *c,
    const struct store_migrate_op *op, int64_t mailbox, uint32_t uid);

/* Fills *mb_out from a row of SQ_MAILBOX_COLS. */
void sq_mailbox_row(sqlite3_stmt *s, struct store_mailbox *mb_out);

/* Access control (store_sqlite_acl.c): reads, and the writer's
 * STORE_REQ_ACL inside the batch's transaction. */
int sq_acl_rights(struct store *st, int64_t account, int64_t mailbox,
    uint32_t *rights_out, int64_t *owner_out, enum store_err *err_out);
int sq_acl_list(struct store *st, int64_t mailbox,
    struct store_acl_entry **list_out, size_t *n_out,
    enum store_err *err_out);
int sq_acl_shared_list(struct store *st, int64_t account,
    struct store_acl_shared **list_out, size_t *n_out,
    enum store_err *err_out);
enum store_err sq_acl_apply(struct sq_conn *c, struct store_req *req);
/* Writer thread: STORE_OK when actor holds every right of need on
 * mailbox (read in the batch's transaction), else STORE_NOT_ALLOWED,
 * STORE_NOT_FOUND or the store's error. */
enum store_err sq_acl_check(struct sq_conn *c, int64_t actor,
    int64_t mailbox, uint32_t need);
/* store_sqlite_metadata.c */
int sq_metadata_list(struct store *st, int64_t account, int64_t mailbox,
    struct store_metadata **list_out, size_t *n_out,
    enum store_err *err_out);
enum store_err sq_metadata_apply(struct sq_conn *c, struct store_req *req);

/* Search (store_sqlite_search.c). */
int sq_sort_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
    size_t *n_out, enum store_err *err_out);
int sq_search(struct store *st, int64_t mailbox,
    const struct store_cond *cond, uint32_t **uids_out, size_t *n_out,
    enum store_err *err_out);

#endif
