/*
 * store_int: what the files of src/store share and no other folder sees:
 * struct store itself, the requests the writer thread runs, deliveries,
 * the parsed form of a message, and the helpers for names, keywords and
 * text that both backends use. Backends are reached through
 * store_backend.h; nothing here knows SQL.
 */
#ifndef POSTERN_STORE_INT_H
#define POSTERN_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

struct store_backend;
struct store_queue_op;
struct store_watch;
struct store_account_watch;

/* Requests per commit unless store_tune() says otherwise, and the most
 * it may say (the orphan probe at open relies on it). */
#define STORE_BATCH_MAX_DEFAULT 256
#define STORE_BATCH_MAX_LIMIT 1024
/* How long the writer waits for a batch to fill up to the size of the
 * last one (store_writer.c), in microseconds. */
#define STORE_GATHER_USEC 1500
/* How long the writer must have been without requests before it does
 * background work (the full-text index), in microseconds. */
#define STORE_IDLE_USEC 20000
/* Longest mailbox name in bytes, and deepest hierarchy. */
#define STORE_MAILBOX_NAME_MAX 1000
/* Aliases are followed this deep (store.h, store_route_resolve). */
#define STORE_ALIAS_DEPTH 8
/* Bytes of header and body text kept for search per message. */
#define STORE_HEADER_TEXT_MAX (256u << 10)
/* A delivery keeps a copy of a body this small in memory, so that it is
 * parsed without reading the file back (mmap and munmap cost TLB
 * shootdowns across every thread of the process). */
#define STORE_INLINE_MAX (1u << 20)
/* Watches hash on the mailbox id into this many chains. */
#define STORE_WATCH_BUCKETS 256

struct store {
	char *data_dir;
	bool is_tmpfile;	/* bodies start as O_TMPFILE files */
	const struct store_backend *be;
	void *be_state;

	/* The writer's queue; lock guards everything below it. */
	pthread_mutex_t lock;
	pthread_cond_t queue_cond;
	pthread_cond_t idle_cond;	/* the text index caught up */
	struct store_req *head, *tail;
	size_t nqueued;
	size_t batch_max;
	enum store_sync sync;
	bool is_stopping;
	bool is_index_idle;	/* nothing left to index */
	bool is_index_paused;	/* store_index_pause() */
	uint64_t batches;	/* commits so far, for store_index_wait */
	pthread_t writer;

	/* Watches by mailbox; watch_lock guards the chains. */
	pthread_mutex_t watch_lock;
	struct store_watch *watches[STORE_WATCH_BUCKETS];
	/* Account watches by account, under watch_lock too. */
	struct store_account_watch *account_watches[STORE_WATCH_BUCKETS];

	/* \Recent claims not yet committed (store_recent.c); recent_lock
	 * guards them and orders every claim. */
	pthread_mutex_t recent_lock;
	struct store_recent_claim *recent;
	size_t nrecent, recent_cap;
};

/* A claim of \Recent messages whose write has not committed: while it
 * is here it, not the database, says where the mailbox's unclaimed
 * messages start (store_recent.c). */
struct store_recent_claim {
	int64_t mailbox;
	uint32_t uidvalidity;
	uint32_t uid;		/* the first UID not claimed */
};

/* A backup's snapshot (store.h), filled by the backend. */
struct store_snapshot {
	struct store *st;
	int db_fd;		/* the metadata copy, unlinked */
	int lock_fd;		/* holds the GC lock shared */
	int64_t schema;
	struct store_snapshot_blob *blobs;	/* ascending ids */
	size_t nblobs;
};

/* One recipient of a delivery (store_delivery_add). */
struct store_rcpt {
	int64_t account;
	char *mailbox;		/* NULL: INBOX */
	uint32_t flags;
	char *keywords;		/* normalized, or NULL */
	int64_t internal_date;
	bool is_invalid;	/* bad mailbox name or keywords */
};

/* One external recipient of a delivery (store_delivery_queue). */
struct store_queued {
	char *sender;		/* "" for the null sender */
	char *rcpt;
	char *dsn_envelope;	/* or NULL */
	char *dsn_rcpt;		/* or NULL */
	bool is_report;		/* store_delivery_notify */
};

/* What a message's MIME parse gives the store, once per blob. */
struct store_parsed {
	struct store_structure structure;
	char *subject, *from, *to, *cc, *bcc;	/* decoded, or NULL */
	char *message_id;
	char *in_reply_to, *references;	/* ids, space-separated, or NULL */
	char *headers_text;	/* top-level header as sent but unfolded,
				 * then the decoded fields, UTF-8: what
				 * TEXT and HEADER search */
	char *body_text;	/* decoded body text, UTF-8 */
	int64_t date_local;	/* Date: as read on the sender's clock, as
				 * if UTC (valid when structure.date >= 0) */
};

void store_parsed_deinit(struct store_parsed *p);
/* Parses the len bytes of a message (mime_parse) into *p_out. */
void store_parsed_init(struct store_parsed *p_out, const char *data,
    size_t len);

struct store_delivery {
	struct store *st;
	int fd;			/* the body file; -1 once closed */
	char *path;		/* its temporary name, in DATA/tmp; NULL for
				 * an O_TMPFILE file, which has none */
	uint64_t size;
	char *copy;		/* the body while size <= STORE_INLINE_MAX */
	size_t copy_cap;
	bool is_failed;		/* a write failed: every recipient fails */
	bool is_no_space;	/* ... because the disk was full */
	bool is_parsed;		/* parsed holds the body's parse */
	struct store_rcpt *rcpts;
	size_t nrcpts, rcpts_cap;
	struct store_queued *queued;
	size_t nqueued;
	bool is_atomic;		/* store_delivery_set_atomic */
	struct store_delivery *next;	/* committed with this one
					 * (store_delivery_chain) */
	int64_t replace_mailbox;	/* store_delivery_replace; 0: none */
	uint32_t replace_uid;
	bool is_authenticated;	/* store_delivery_set_authenticated */
	bool is_junk;		/* store_delivery_set_junk */
	struct store_migrate_op *migrate;	/* store_delivery_migrate */
	struct store_parsed parsed;
	/* Set by the backend's writer: the blob id this body is to become
	 * (0: none yet), whether a recipient took it (its row exists), the
	 * file's name once placed (NULL: none yet), and whether the commit
	 * made the file the store's. */
	int64_t blob;
	bool is_blob_used;
	char *placed;
	bool is_kept;
};

/* The store error for a failed system call's errno: STORE_NO_SPACE for a
 * full disk (ENOSPC, EDQUOT), else STORE_TEMP. */
enum store_err store_err_errno(int errnum);

/* Removes the temporary files that crashed processes left in DATA/tmp. */
void store_delivery_tmp_clean(const char *data_dir);
/* Whether DATA/tmp takes O_TMPFILE files that linkat(2) can name later
 * (Linux 3.11+, most local file systems, /proc mounted). */
bool is_store_tmpfile_usable(const char *data_dir);
/* Gives the body file of d the name at (dirfd, name): a rename from its
 * temporary name, or a link of its O_TMPFILE inode. Returns 0 or -1 with
 * errno set. */
int store_delivery_link(struct store_delivery *d, int dirfd,
    const char *name);
/* Takes the name store_delivery_link gave back (d->placed): renames the
 * file to its temporary name, or unlinks the O_TMPFILE's link. */
int store_delivery_unlink(struct store_delivery *d);
/* Closes the delivery's file and, unless the store keeps it, unlinks it
 * wherever it is now. */
void store_delivery_discard(struct store_delivery *d);
void store_delivery_free(struct store_delivery **d);

/* What the writer runs. Each kind names the fields it reads. */
enum store_req_kind {
	STORE_REQ_DELIVERY,	/* d */
	STORE_REQ_CHANGE,	/* change */
	STORE_REQ_DOMAIN_ADD,	/* s1 */
	STORE_REQ_DOMAIN_DEL,	/* s1 */
	STORE_REQ_CATCHALL_SET,	/* s1 domain, s2 target or NULL */
	STORE_REQ_ACCOUNT_ADD,	/* account_in; sets id_out */
	STORE_REQ_ACCOUNT_DEL,	/* s1 */
	STORE_REQ_ACCOUNT_UPDATE,	/* account_in */
	STORE_REQ_ALIAS_ADD,	/* s1 address, s2 target */
	STORE_REQ_ALIAS_DEL,	/* s1 address, s2 target or NULL */
	STORE_REQ_MAILBOX_CREATE,	/* account, s1, special */
	STORE_REQ_MAILBOX_RENAME,	/* account, s1 from, s2 to */
	STORE_REQ_MAILBOX_DELETE,	/* account, s1 */
	STORE_REQ_MAILBOX_SUBSCRIBE,	/* account, s1, is_on */
	STORE_REQ_APP_PASSWORD_ADD,	/* account, s1 name, s2 hash,
					 * protocols */
	STORE_REQ_APP_PASSWORD_REVOKE,	/* account, s1 name */
	STORE_REQ_APP_PASSWORD_TOUCH,	/* id, when, s1 peer or NULL */
	STORE_REQ_CHECK,	/* is_on: repair; report, report_arg */
	STORE_REQ_QUEUE,	/* qop (store_queue_int.h) */
	STORE_REQ_MIGRATE,	/* mop */
	STORE_REQ_ACL,		/* acl */
	STORE_REQ_METADATA,	/* meta */
	STORE_REQ_RECENT_SET,	/* id mailbox, uidvalidity, recent_uid; no
				 * waiter, no callback (store_recent.c) */
};

/* A change to the migration map (store.h, store_migrate.c). */
enum store_migrate_op_kind {
	STORE_MIGRATE_OP_PUT,		/* entry */
	STORE_MIGRATE_OP_DEL,		/* entry.uidvalidity, entry.key or
					 * NULL */
	STORE_MIGRATE_OP_FOLDER_SET,	/* uidvalidity, modseq */
};

struct store_migrate_op {
	enum store_migrate_op_kind kind;
	int64_t account;
	char *source, *folder;
	struct store_migrate_entry entry;	/* owned copies */
	uint32_t uidvalidity;
	uint64_t modseq;
};

void store_migrate_op_free(struct store_migrate_op **op);

/* A metadata change (store_metadata.c): op's fields, entries copied. */
struct store_metadata_req {
	int64_t account, mailbox;
	size_t entries_max;
	uint64_t total_max;
	struct store_metadata *entries;
	size_t n;
};

void store_metadata_req_free(struct store_metadata_req **m);

struct store_req {
	enum store_req_kind kind;
	struct store_req *next;

	/* Completion: async requests name a base and a callback, sync
	 * requests a condition variable (on the waiter's stack) signalled
	 * under st->lock once is_done. */
	struct event_base *base;
	store_delivery_cb delivery_cb;
	store_change_cb change_cb;
	store_mailbox_cb mailbox_cb;
	void *arg;
	pthread_cond_t *done_cond;
	bool is_done;

	/* Arguments: borrowed from a waiting caller, owned by an async
	 * request (owned_uids, owned_keywords). */
	const char *s1, *s2;
	int64_t account;
	int64_t actor;		/* MAILBOX_*: store_mailbox_op.actor */
	int64_t id, when;
	uint32_t protocols;
	enum store_special special;
	bool is_on;
	bool is_name_only;	/* MAILBOX_SUBSCRIBE: no mailbox needed */
	const struct store_account *account_in;
	struct store_delivery *d;
	struct store_change change;
	uint32_t *owned_uids;
	char *owned_keywords;
	char *owned_s1, *owned_s2;	/* s1, s2 of an async request */
	void (*report)(void *arg, const char *line);
	void *report_arg;
	struct store_queue_op *qop;
	struct store_migrate_op *mop;
	struct store_acl_op acl;
	struct store_metadata_req *meta;	/* owned */
	uint32_t uidvalidity, recent_uid;

	/* Results. */
	enum store_err err;
	int64_t id_out;
	int problems;		/* STORE_REQ_CHECK */
	struct store_delivery_result *dres;	/* one per local recipient,
						 * then one for the queued */
	size_t ndres;
	struct store_change_result cres;

	/* Mailboxes this request changed, for the watches. */
	int64_t *touched;
	size_t ntouched, touched_cap;
	/* What it did, for the account watches (NOTIFY). */
	uint64_t origin;	/* store_origin_set() at submission */
	struct store_req_event *events;
	size_t nevents, events_cap;
};

/* One event of a request, for the account watches of account. */
struct store_req_event {
	int64_t account;
	struct store_event ev;	/* owns its names */
};

/* Notes that req changed mailbox (once is enough; repeats are dropped). */
void store_req_touch(struct store_req *req, int64_t mailbox);
/* Notes an event for the account watches: kind is enum store_event_kind
 * bits; message events (NEW, EXPUNGE, FLAGS) name the mailbox by id and
 * merge with an earlier one of the same mailbox; name events copy name
 * and old_name (may be NULL). */
void store_req_event(struct store_req *req, int64_t account,
    int64_t mailbox, unsigned kind, const char *name, const char *old_name);
/* What store_origin_set() last said on this thread. */
uint64_t store_origin_current(void);
/* Forgets the events (an attempt that is rolled back), freeing them. */
void store_req_events_clear(struct store_req *req);

/* Writer (store_writer.c). */
int store_writer_start(struct store *st, char *err, size_t errlen);
/* Runs what is queued, then stops the thread. */
void store_writer_stop(struct store *st);
/* Queues req and returns at once; the writer completes it later.
 * Returns -1 when the store is closing (req untouched). */
int store_writer_submit(struct store *st, struct store_req *req);
/* Queues req and waits until it is done. Returns -1 with req->err
 * STORE_TEMP when the store is closing. */
int store_writer_run(struct store *st, struct store_req *req);

/* \Recent (store_recent.c): the writer has run req, a
 * STORE_REQ_RECENT_SET, and committed it when req->err is STORE_OK. */
void store_recent_written(struct store *st, const struct store_req *req);
/* Frees what claims are left (store_close). */
void store_recent_deinit(struct store *st);

/* Watches (store_watch.c): schedules the callback of every watch on one
 * of the n mailboxes. Called by the writer after a commit. */
void store_watch_notify(struct store *st, const int64_t *mailboxes,
    size_t n);
/* Hands the events of the requests that succeeded to the account watches
 * of their accounts. Called by the writer after a commit. */
void store_account_watch_notify(struct store *st, struct store_req **reqs,
    size_t n);

/* Names (store_name.c). Each returns 0 with a new normalized string in
 * *norm_out, or -1 (STORE_INVALID). */
int store_name_domain(const char *domain, char **norm_out);
/* local@domain, lowercased; *domain_out points into *norm_out. */
int store_name_address(const char *address, char **norm_out,
    const char **domain_out);
/* A mailbox name: valid UTF-8, no control characters, no wildcards, no
 * empty level; a first level spelled INBOX in any case becomes "INBOX". */
int store_name_mailbox(const char *name, char **norm_out);
bool is_store_name_inbox(const char *norm);
/* Whether a mailbox may be created (CREATE, the new name of RENAME) under
 * the normalized name norm: no "." or ".." level, no leading "~", no C1
 * control character, so that a name never reads as a path outside the
 * account's folder. Existing names stay reachable whatever they are. */
bool is_store_name_creatable(const char *norm);
/* The parent of a normalized name in a new string, or NULL at the top. */
char *store_name_parent(const char *norm);

/* Keywords (store_name.c; the list helpers are in store.h). */
int store_keywords_norm(const char *keywords, char **norm_out);

/* Text (store_text.c). */
bool is_store_utf8(const char *s, size_t len);
/* A copy of the len bytes of s with every invalid UTF-8 sequence and NUL
 * replaced by '?'. */
char *store_utf8_clean(const char *s, size_t len);
/* Whether needle occurs in hay, ASCII letters compared case-insensitively
 * (RFC 9051 §6.4.4). An empty needle always occurs. */
bool has_store_text(const char *hay, size_t hlen, const char *needle,
    size_t nlen);
/* Whether the header block has a field named field (case-insensitive)
 * whose unfolded value contains needle (RFC 9051 §6.4.4 HEADER); an empty
 * needle matches any such field. The block ends at its first empty
 * line. */
bool has_store_header_text(const char *headers, size_t len,
    const char *field, const char *needle, size_t nlen);

#endif
