/*
 * store: the one storage API of postern (DESIGN.md, Storage). Directory
 * (domains, accounts, aliases), mailboxes, messages, flags, search, quotas
 * and change notifications. Sessions never see SQL or files.
 *
 * Threads. A struct store is opened once per process and shared by every
 * thread. Reads are synchronous and may be called from any thread (each
 * call takes a read connection of its own from a pool; WAL readers never
 * wait for the writer). Changes go to one writer thread that commits them
 * in batches, one fsync for many changes (group commit):
 *   - the asynchronous form (store_*_submit) takes an event_base and calls
 *     its completion callback on that base's thread once the change is
 *     durable, or failed; it follows STYLE.md: returns 0 and calls back
 *     exactly once later, or returns -1 and never calls back;
 *   - the synchronous form waits for the same writer (CLI, tests).
 * Strings the store returns are owned by the caller unless said otherwise;
 * free lists with the matching *_free function.
 *
 * Numbers follow RFC 9051 and RFC 7162: UIDVALIDITY, UIDs and MODSEQs are
 * never reused and never go backwards, across restarts and crashes.
 */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct store;

enum store_err {
	STORE_OK,
	STORE_NOT_FOUND,	/* no such domain, account, mailbox, message */
	STORE_EXISTS,		/* name already taken */
	STORE_INVALID,		/* bad name, bad argument (client's mistake) */
	STORE_OVER_QUOTA,	/* the account's quota would be exceeded */
	STORE_NOT_ALLOWED,	/* e.g. deleting INBOX, renaming onto a child */
	STORE_MODIFIED,		/* CONDSTORE UNCHANGEDSINCE failed */
	STORE_TEMP,		/* database busy, I/O error: try later */
	STORE_NO_SPACE,		/* the server's disk is full (ENOSPC, EDQUOT,
				 * SQLITE_FULL): try later; not the
				 * account's quota */
};

/* A sentence for logs and replies: "over quota", "no such mailbox". */
const char *store_err_text(enum store_err err);

/* Opens (creating on first use) the store under data_dir, recovers what a
 * crash left, and starts its writer thread. Returns NULL with err set. */
struct store *store_open(const char *data_dir, char *err, size_t errlen);
/* Waits for queued changes, stops the writer, closes everything. Every
 * watch must have been freed before. */
void store_close(struct store **st);

/* How the writer makes a batch's message files durable before it commits
 * the batch's metadata. */
enum store_sync {
	STORE_SYNC_AUTO,	/* the backend's choice (the default) */
	STORE_SYNC_SYNCFS,	/* one syncfs(2) of the data file system */
	STORE_SYNC_FILES,	/* fdatasync(2) each file, fsync(2) each
				 * directory touched */
};

/* Tuning for benchmarks and tests: at most batch_max requests per commit
 * (1 turns group commit off; 0 means the default, 256; at most 1024). Safe
 * to call at any time from any thread; the next batch uses it. */
void store_tune(struct store *st, size_t batch_max, enum store_sync sync);

/* Waits until the full-text index has caught up with every message
 * committed so far, resuming it if paused. Search is exact either way
 * (messages not yet indexed are scanned); this is for benchmarks and
 * tests. Returns 0, or -1 with *err_out set. */
int store_index_wait(struct store *st, enum store_err *err_out);
/* Stops or resumes the background indexing of new messages (benchmarks
 * and tests). */
void store_index_pause(struct store *st, bool is_paused);

/* ---- Directory -------------------------------------------------------- */

/* Per-account protocol switch: follow the server default, or force. */
enum store_switch {
	STORE_SWITCH_DEFAULT = -1,
	STORE_SWITCH_OFF = 0,
	STORE_SWITCH_ON = 1,
};

struct store_account {
	int64_t id;
	char *address;		/* lowercase local@domain */
	char *display_name;	/* or NULL */
	char *password_hash;	/* crypt(3) string, or NULL: no password */
	char *scram_sha256;	/* RFC 5803 "SCRAM-SHA-256$..." or NULL */
	uint64_t quota_bytes;	/* 0: unlimited */
	uint64_t quota_messages;	/* 0: unlimited */
	bool is_enabled;
	enum store_switch imap, pop3, submission;
	char *forward_to;	/* external address, or NULL */
	bool is_forward_kept;	/* keep a local copy when forwarding */
	uint32_t pop3_retention_days;	/* 0: keep forever */
	int64_t locked_until;	/* unix time; 0: not locked */
	int64_t created;	/* unix time */
};

void store_account_deinit(struct store_account *a);

int store_domain_add(struct store *st, const char *domain,
    enum store_err *err_out);
/* Refuses (STORE_NOT_ALLOWED) while the domain still has accounts. */
int store_domain_del(struct store *st, const char *domain,
    enum store_err *err_out);
/* Returns 0 with a NULL-terminated array of names (free with
 * store_strings_free). */
int store_domain_list(struct store *st, char ***names_out,
    enum store_err *err_out);
bool is_store_domain_local(struct store *st, const char *domain);
/* Catch-all of a domain: every unknown local part goes to target (an
 * address), or nobody when target is NULL. */
int store_domain_catchall_set(struct store *st, const char *domain,
    const char *target, enum store_err *err_out);

/* Creates the account a->address (its domain must exist) with INBOX, Sent,
 * Drafts, Trash, Junk and Archive (RFC 6154). Sets a->id. */
int store_account_add(struct store *st, struct store_account *a,
    enum store_err *err_out);
/* Deletes the account, its mailboxes and messages. */
int store_account_del(struct store *st, const char *address,
    enum store_err *err_out);
/* Fills *a_out (deinit it) for address, case-insensitively. */
int store_account_get(struct store *st, const char *address,
    struct store_account *a_out, enum store_err *err_out);
int store_account_get_by_id(struct store *st, int64_t id,
    struct store_account *a_out, enum store_err *err_out);
/* Writes every field of a (found by a->id) except id, address, created. */
int store_account_update(struct store *st, const struct store_account *a,
    enum store_err *err_out);
/* Accounts of domain (every domain when NULL), by address. */
int store_account_list(struct store *st, const char *domain,
    struct store_account **list_out, size_t *n_out,
    enum store_err *err_out);
void store_account_list_free(struct store_account **list, size_t n);

/* What the account's messages take now, for quotas (RFC 9208 STORAGE and
 * MESSAGE). */
int store_account_usage(struct store *st, int64_t account,
    uint64_t *bytes_out, uint64_t *messages_out, enum store_err *err_out);

/* App passwords: one per device, named, optionally limited to some
 * protocols, usable wherever the account password is. */
enum store_app_proto {
	STORE_APP_IMAP = 1 << 0,
	STORE_APP_POP3 = 1 << 1,
	STORE_APP_SUBMISSION = 1 << 2,
};

struct store_app_password {
	int64_t id;
	char *name;
	char *hash;		/* crypt(3) */
	uint32_t protocols;	/* enum store_app_proto bits; 0: all */
	int64_t created;
	int64_t last_used;	/* 0: never */
	char *last_peer;	/* address of the last use, or NULL */
};

/* STORE_EXISTS when the account already has an app password of that
 * name. */
int store_app_password_add(struct store *st, int64_t account,
    const char *name, const char *hash, uint32_t protocols,
    enum store_err *err_out);
int store_app_password_list(struct store *st, int64_t account,
    struct store_app_password **list_out, size_t *n_out,
    enum store_err *err_out);
void store_app_password_list_free(struct store_app_password **list,
    size_t n);
int store_app_password_revoke(struct store *st, int64_t account,
    const char *name, enum store_err *err_out);
/* Notes a use: time and client address. */
int store_app_password_touch(struct store *st, int64_t id, int64_t when,
    const char *peer, enum store_err *err_out);

/* Adds one target to the alias address, whose domain must be ours
 * (STORE_NOT_FOUND otherwise). A target that leads back to address
 * through other aliases is refused (STORE_NOT_ALLOWED). */
int store_alias_add(struct store *st, const char *address,
    const char *target, enum store_err *err_out);
/* Removes one target, or every target of address when target is NULL. */
int store_alias_del(struct store *st, const char *address,
    const char *target, enum store_err *err_out);
/* Targets of address (NULL-terminated; none: STORE_NOT_FOUND). */
int store_alias_targets(struct store *st, const char *address,
    char ***targets_out, enum store_err *err_out);
/* Every alias as pairs "address", "target", ... (NULL-terminated). */
int store_alias_list(struct store *st, char ***pairs_out,
    enum store_err *err_out);

/* Where mail for address goes: local accounts (after aliases, nested up
 * to 8 levels, and the domain's catch-all) and external addresses.
 * STORE_NOT_FOUND when the domain is ours but nobody takes the address;
 * STORE_INVALID when the domain is not ours. */
struct store_route {
	int64_t *accounts;
	size_t naccounts;
	char **external;	/* forwarding targets and external aliases */
	size_t nexternal;
};
int store_route_resolve(struct store *st, const char *address,
    struct store_route *route_out, enum store_err *err_out);
/* Where mail to postmaster@domain goes, which RFC 5321 §4.5.1 says must
 * be accepted: the domain's own postmaster (account, alias or catch-all),
 * else admin (the configured [server] postmaster, NULL when not set), else
 * the domain's oldest enabled account, else the server's. domain NULL is
 * the bare "postmaster" of RFC 5321 §4.1.1.3 (admin first). *how_out
 * (static) says which: "domain", "config" or "first_account".
 * STORE_INVALID when domain is not ours; STORE_NOT_FOUND only when the
 * server has no enabled account at all. */
int store_route_postmaster(struct store *st, const char *domain,
    const char *admin, struct store_route *route_out, const char **how_out,
    enum store_err *err_out);
void store_route_deinit(struct store_route *r);

void store_strings_free(char ***strings);

/* ---- Mailboxes -------------------------------------------------------- */

/* RFC 6154 special-use attributes. */
enum store_special {
	STORE_SPECIAL_NONE,
	STORE_SPECIAL_SENT,
	STORE_SPECIAL_DRAFTS,
	STORE_SPECIAL_TRASH,
	STORE_SPECIAL_JUNK,
	STORE_SPECIAL_ARCHIVE,
	STORE_SPECIAL_ALL,
	STORE_SPECIAL_FLAGGED,
};

/* "\\Sent", ... or NULL for STORE_SPECIAL_NONE. */
const char *store_special_name(enum store_special special);

struct store_mailbox {
	int64_t id;
	char *name;		/* full name, '/' separates levels */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t size;		/* bytes of every message */
	enum store_special special;
	bool is_subscribed;
	bool has_children;
};

void store_mailbox_deinit(struct store_mailbox *mb);

/* Names are UTF-8, '/' the hierarchy separator; INBOX is case-insensitive
 * (RFC 9051 §5.1), also as the first level of a child ("inbox/a" is
 * "INBOX/a"). Missing parents are created too (RFC 9051 §6.3.4). */
int store_mailbox_create(struct store *st, int64_t account,
    const char *name, enum store_special special, enum store_err *err_out);
/* Renames name and its children. Renaming INBOX moves its messages to the
 * new mailbox and leaves INBOX empty (RFC 9051 §6.3.6). */
int store_mailbox_rename(struct store *st, int64_t account,
    const char *from, const char *to, enum store_err *err_out);
/* Deletes a mailbox and its messages; INBOX cannot be deleted. Children
 * stay. A mailbox created later under the same name gets a new
 * UIDVALIDITY. */
int store_mailbox_delete(struct store *st, int64_t account,
    const char *name, enum store_err *err_out);
int store_mailbox_get(struct store *st, int64_t account, const char *name,
    struct store_mailbox *mb_out, enum store_err *err_out);
/* The mailbox of account whose id is id (STORE_NOT_FOUND when it is gone
 * or another account's): one row, not the list (IMAP NOTIFY). */
int store_mailbox_get_id(struct store *st, int64_t account, int64_t id,
    struct store_mailbox *mb_out, enum store_err *err_out);
/* Every mailbox of the account, by name. */
int store_mailbox_list(struct store *st, int64_t account,
    struct store_mailbox **list_out, size_t *n_out,
    enum store_err *err_out);
void store_mailbox_list_free(struct store_mailbox **list, size_t n);
/* \Recent (RFC 3501 §2.3.2): a message is recent in the one session
 * that first learns of it after it came into its mailbox. The store keeps,
 * per mailbox, the first UID no session has claimed; it never goes
 * backwards while the server runs (a crash may forget the last claims:
 * those messages are recent once more, which RFC 3501 allows). Each call
 * names the mailbox by id and UIDVALIDITY (STORE_NOT_FOUND when it is
 * gone) and returns 0, or -1 with *err_out set.
 *
 * store_recent_claim: claims the unclaimed messages below uid_end for the
 * caller (an IMAP4rev1 SELECT, or such a session learning of new mail):
 * those with UIDs from *first_out up to uid_end - 1 are recent for it and
 * for no one else (none when *first_out >= uid_end). Two callers never get
 * the same UID. store_recent_peek: *first_out without claiming (EXAMINE,
 * RFC 3501 §6.3.2). store_recent_count: how many messages are unclaimed
 * (STATUS RECENT). */
int store_recent_claim(struct store *st, int64_t mailbox,
    uint32_t uidvalidity, uint32_t uid_end, uint32_t *first_out,
    enum store_err *err_out);
int store_recent_peek(struct store *st, int64_t mailbox,
    uint32_t uidvalidity, uint32_t *first_out, enum store_err *err_out);
int store_recent_count(struct store *st, int64_t mailbox,
    uint32_t uidvalidity, uint32_t *n_out, enum store_err *err_out);

/* The same changes through the writer without waiting (IMAP): cb runs
 * on base's thread once the change is durable or failed, with its error
 * (STORE_INVALID for a bad name, as the calls above). Copies the names.
 * Returns -1 and never calls back when the store is closing. */
struct store_mailbox_op {
	enum store_mailbox_op_kind {
		STORE_MAILBOX_CREATE,	/* name, special */
		STORE_MAILBOX_RENAME,	/* name to to */
		STORE_MAILBOX_DELETE,	/* name */
		STORE_MAILBOX_SUBSCRIBE,	/* name */
		STORE_MAILBOX_UNSUBSCRIBE,	/* name */
		/* name, which is not one of the account's mailboxes:
		 * another user's the caller may look up (RFC 4314) */
		STORE_MAILBOX_SUBSCRIBE_NAME,
	} kind;
	int64_t account;
	const char *name;
	const char *to;
	enum store_special special;
	/* Who asks: 0 (or account) for the owner; another account's
	 * rights are read again by the writer in the commit's transaction
	 * (RFC 4314 §4: "k" on the parent for CREATE and for RENAME's new
	 * name, "x" for DELETE and RENAME's old name), so that a change
	 * never rests on a right withdrawn since the session looked. */
	int64_t actor;
};
typedef void (*store_mailbox_cb)(void *arg, enum store_err err);
int store_mailbox_submit(struct store *st, const struct store_mailbox_op *op,
    struct event_base *base, store_mailbox_cb cb, void *arg);

/* Subscriptions are names, kept apart from the mailboxes (RFC 9051
 * §6.3.7): deleting a mailbox leaves its name subscribed, renaming moves
 * the subscriptions of the name and its children. Subscribing needs the
 * mailbox (STORE_NOT_FOUND); unsubscribing needs only the subscription. */
int store_mailbox_subscribe(struct store *st, int64_t account,
    const char *name, bool is_subscribed, enum store_err *err_out);
/* Every subscribed name of the account, existing or not, by name
 * (NULL-terminated; free with store_strings_free). */
int store_subscription_list(struct store *st, int64_t account,
    char ***names_out, enum store_err *err_out);
/* Whether name (as stored) is among the account's subscriptions: 1, 0,
 * or -1 with *err_out set. One lookup, whatever their number. */
int store_subscription_has(struct store *st, int64_t account,
    const char *name, enum store_err *err_out);

/* ---- Access control (RFC 4314) ----------------------------------------- */

/* The rights of RFC 4314 §2.1, one bit each. The owner of a mailbox
 * always holds every one of them (not stored); other accounts hold what
 * the mailbox's entries grant them (their own and "anyone"'s) minus what
 * its negative entries take away (§2). */
enum store_acl_right {
	STORE_ACL_LOOKUP = 1 << 0,	/* l: LIST, know it exists */
	STORE_ACL_READ = 1 << 1,	/* r: SELECT, FETCH, SEARCH, COPY from */
	STORE_ACL_SEEN = 1 << 2,	/* s: keep \Seen */
	STORE_ACL_WRITE = 1 << 3,	/* w: other flags and keywords */
	STORE_ACL_INSERT = 1 << 4,	/* i: APPEND, COPY into */
	STORE_ACL_POST = 1 << 5,	/* p: send mail to it (unused) */
	STORE_ACL_CREATE = 1 << 6,	/* k: create children */
	STORE_ACL_DELETE = 1 << 7,	/* x: delete, rename */
	STORE_ACL_DELETED = 1 << 8,	/* t: set or clear \Deleted */
	STORE_ACL_EXPUNGE = 1 << 9,	/* e: EXPUNGE */
	STORE_ACL_ADMIN = 1 << 10,	/* a: change the ACL */
};
#define STORE_ACL_ALL 0x7ffu

/* One entry of a mailbox's ACL. */
struct store_acl_entry {
	int64_t grantee;	/* account id, or 0: "anyone" */
	char *address;		/* the grantee's address, NULL for anyone */
	bool is_negative;	/* "-identifier": rights taken away */
	uint32_t rights;	/* enum store_acl_right bits */
};

/* The rights account holds on mailbox (a store id): STORE_ACL_ALL for the
 * owner, else from the ACL; *owner_out (may be NULL) receives the owning
 * account. STORE_NOT_FOUND when the mailbox is gone. */
int store_acl_rights(struct store *st, int64_t account, int64_t mailbox,
    uint32_t *rights_out, int64_t *owner_out, enum store_err *err_out);
/* The entries of mailbox, positive ones first, each by grantee address
 * ("anyone" first). Free with store_acl_list_free. */
int store_acl_list(struct store *st, int64_t mailbox,
    struct store_acl_entry **list_out, size_t *n_out,
    enum store_err *err_out);
void store_acl_list_free(struct store_acl_entry **list, size_t n);

/* A mailbox of another account that account may look up (holds
 * STORE_ACL_LOOKUP on), for the "Other Users" namespace (RFC 2342). */
struct store_acl_shared {
	struct store_mailbox mb;	/* has_children counts every child */
	int64_t owner;
	char *owner_address;
	uint32_t rights;
};
/* Every such mailbox, by owner address then name. */
int store_acl_shared_list(struct store *st, int64_t account,
    struct store_acl_shared **list_out, size_t *n_out,
    enum store_err *err_out);
void store_acl_shared_list_free(struct store_acl_shared **list, size_t n);

/* A change to one entry, through the writer. */
enum store_acl_mode {
	STORE_ACL_REPLACE,	/* the entry's rights become rights */
	STORE_ACL_ADD,		/* rights are added */
	STORE_ACL_REMOVE,	/* rights are taken out */
	STORE_ACL_DROP,		/* the entry goes (DELETEACL) */
};
struct store_acl_op {
	/* The account asking: the change is made only if it holds
	 * STORE_ACL_ADMIN on the mailbox when the writer commits it
	 * (STORE_NOT_ALLOWED otherwise); 0 for an administrator. */
	int64_t actor;
	int64_t mailbox;
	int64_t grantee;	/* account id, or 0: anyone; never the owner
				 * (STORE_NOT_ALLOWED: the owner's rights
				 * are not the ACL's) */
	bool is_negative;
	enum store_acl_mode mode;
	uint32_t rights;
};
/* cb runs on base's thread once the change is durable or failed
 * (STORE_NOT_FOUND: the mailbox or grantee is gone). An entry left
 * without rights is removed. Returns -1 and never calls back when the
 * store is closing. */
int store_acl_submit(struct store *st, const struct store_acl_op *op,
    struct event_base *base, store_mailbox_cb cb, void *arg);
/* The same, waiting. */
int store_acl_set(struct store *st, const struct store_acl_op *op,
    enum store_err *err_out);

/* ---- Messages --------------------------------------------------------- */

/* System flags as bits (RFC 9051 §2.3.2); keywords are separate. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

struct store_msg {
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags;		/* enum store_flag bits */
	char *keywords;		/* space-separated, or NULL */
	int64_t internal_date;	/* unix time */
	uint64_t size;		/* RFC822.SIZE: bytes as stored */
	int64_t blob;		/* the body, for store_blob_* */
	int64_t retrieved;	/* unix time POP3 first retrieved it, or 0 */
	int64_t saved;		/* unix time it came into this mailbox
				 * (RFC 8514 SAVEDATE), or 0: stored before
				 * postern kept it */
};

/* Messages of mailbox with uid_min <= UID <= uid_max, by UID.
 * STORE_INVALID when uid_min > uid_max. */
int store_msg_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, struct store_msg **list_out, size_t *n_out,
    enum store_err *err_out);
/* Messages changed (flags, or new) after modseq, by UID, and the UIDs
 * expunged after it (RFC 7162 §3.1.5, QRESYNC VANISHED), with the
 * mailbox's HIGHESTMODSEQ from the same snapshot (highestmodseq_out may be
 * NULL): asking again from that value misses nothing. */
int store_msg_changes(struct store *st, int64_t mailbox, uint64_t modseq,
    struct store_msg **changed_out, size_t *nchanged_out,
    uint32_t **expunged_out, size_t *nexpunged_out,
    uint64_t *highestmodseq_out, enum store_err *err_out);
void store_msg_list_free(struct store_msg **list, size_t n);

/* What IMAP FETCH needs from the parsed message, cached at delivery. */
struct store_part {
	char *section;		/* "", "1", "1.2" */
	uint64_t header_off, body_off, end_off;
};
struct store_structure {
	char *envelope;		/* IMAP ENVELOPE text */
	char *bodystructure;	/* IMAP BODYSTRUCTURE text */
	char *body;		/* IMAP BODY text */
	struct store_part *parts;
	size_t nparts;
	int64_t date;		/* Date: header, or -1 */
	char *preview;		/* RFC 8970 PREVIEW (mime_info.preview), or
				 * NULL for a body stored before previews
				 * were kept */
};
int store_blob_structure(struct store *st, int64_t blob,
    struct store_structure *s_out, enum store_err *err_out);
/* The structures of n blobs in one read: is_found_out[i] is false (and
 * s_out[i] empty) for a blob that is gone. Returns 0, or -1 with *err_out
 * set (then every s_out[i] is empty). */
int store_blob_structures(struct store *st, const int64_t *blobs, size_t n,
    struct store_structure *s_out, bool *is_found_out,
    enum store_err *err_out);
void store_structure_deinit(struct store_structure *s);
/* Opens the body for reading (pread ranges from it; close it when done).
 * Returns an fd, or -1 with *err_out set. */
int store_blob_open(struct store *st, int64_t blob, enum store_err *err_out);

/* What SORT and THREAD (RFC 5256) read of each message: what delivery
 * cached, never the message itself. */
struct store_sort_msg {
	uint32_t uid;
	int64_t internal_date;
	uint64_t size;
	int64_t date;		/* Date: header, or -1 */
	int64_t blob;
	char *subject;		/* decoded; STORE_SORT_SUBJECT */
	char *envelope;		/* IMAP ENVELOPE text; STORE_SORT_ENVELOPE */
	/* STORE_SORT_IDS: ids without brackets, space-separated; NULL when
	 * absent. */
	char *message_id, *in_reply_to, *references;
	bool is_ids_unknown;	/* backend to store.c: read the header */
};
enum store_sort_what {
	STORE_SORT_SUBJECT = 1 << 0,
	STORE_SORT_ENVELOPE = 1 << 1,
	STORE_SORT_IDS = 1 << 2,
};
/* The messages of mailbox with uid_min <= UID <= uid_max, by UID, with the
 * strings what asks for (enum store_sort_what bits; the numbers always).
 * Messages stored before schema 9 have their In-Reply-To and References
 * read from their header (not the body) when STORE_SORT_IDS asks. Returns
 * 0, or -1 with *err_out set (STORE_INVALID for uid_min > uid_max). */
int store_sort_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
    size_t *n_out, enum store_err *err_out);
void store_sort_list_free(struct store_sort_msg **list, size_t n);

/* ---- Search ----------------------------------------------------------- */

/* One condition; a query is a tree of them (RFC 9051 §6.4.4 keys map onto
 * these). Text conditions use the full-text index to narrow and then
 * check exact substrings of the decoded text. */
enum store_cond_kind {
	STORE_COND_ALL,
	STORE_COND_AND,		/* every child */
	STORE_COND_OR,		/* any child */
	STORE_COND_NOT,		/* the first child is false */
	STORE_COND_UID_RANGE,	/* lo <= UID <= hi */
	STORE_COND_FLAG_SET,	/* flags has every bit of u */
	STORE_COND_FLAG_UNSET,	/* flags has none of the bits of u */
	STORE_COND_KEYWORD,	/* text is a keyword that is set */
	STORE_COND_NO_KEYWORD,
	STORE_COND_INTERNAL_BEFORE,	/* internal date < n (unix time) */
	STORE_COND_INTERNAL_SINCE,	/* internal date >= n */
	STORE_COND_SENT_BEFORE,	/* Date: header < n */
	STORE_COND_SENT_SINCE,
	STORE_COND_SAVED_BEFORE,	/* save date < n; the internal date for
					 * a message without one */
	STORE_COND_SAVED_SINCE,	/* save date >= n */
	STORE_COND_LARGER,	/* size > n */
	STORE_COND_SMALLER,	/* size < n */
	STORE_COND_MODSEQ,	/* modseq >= n */
	STORE_COND_HEADER,	/* header field text (name in field) contains */
	STORE_COND_BODY,	/* decoded body contains text */
	STORE_COND_TEXT,	/* headers or body contain text */
};

struct store_cond {
	enum store_cond_kind kind;
	uint64_t n;		/* numbers, dates, flag bits, UID lo */
	uint64_t hi;		/* UID hi */
	const char *field;	/* header name for STORE_COND_HEADER */
	const char *text;	/* borrowed */
	struct store_cond *children;
	size_t nchildren;
};

/* UIDs of the messages of mailbox that match, ascending. STORE_INVALID for
 * a malformed tree (UID range with lo > hi, NOT without a child, nesting
 * deeper than 32). */
int store_search(struct store *st, int64_t mailbox,
    const struct store_cond *cond, uint32_t **uids_out, size_t *n_out,
    enum store_err *err_out);

/* ---- Changes (through the writer) ------------------------------------ */

/* A delivery: one message stored once for many recipients, atomically. */
struct store_delivery;

/* Starts a delivery; the body is written to a temporary file as it comes.
 * Returns NULL with *err_out set (STORE_TEMP). */
struct store_delivery *store_delivery_new(struct store *st,
    enum store_err *err_out);
/* Appends body bytes. Returns 0, or -1 (STORE_TEMP: disk full). */
int store_delivery_write(struct store_delivery *d, const void *data,
    size_t len, enum store_err *err_out);
/* Appends the len bytes of the file fd from offset start (e.g. a spool of
 * store_spool_open) as body bytes. Returns 0, or -1 with *err_out set
 * (STORE_TEMP, STORE_NO_SPACE; STORE_INVALID when fd holds fewer than
 * start + len bytes). */
int store_delivery_write_fd(struct store_delivery *d, int fd, uint64_t start,
    uint64_t len, enum store_err *err_out);
/* A file without a name in the data directory (DATA/tmp), open for reading
 * and writing, for bytes on their way to a delivery that are too many to
 * hold in memory (a large IMAP APPEND literal). Closing it frees it; a
 * crash leaves nothing (or, without O_TMPFILE, a "d.<pid>." name that the
 * next open removes). Returns the descriptor (the caller closes it), or -1
 * with *err_out set. */
int store_spool_open(struct store *st, enum store_err *err_out);
/* Adds a recipient: mailbox name (NULL: INBOX), flags, keywords (NULL or
 * space-separated) and internal date (0: now). */
void store_delivery_add(struct store_delivery *d, int64_t account,
    const char *mailbox, uint32_t flags, const char *keywords,
    int64_t internal_date);

/* Queues the message for an external recipient; the outbound queue
 * delivers it. sender is the envelope sender ("" for the null sender);
 * dsn_envelope holds RFC 3461 RET/ENVID and dsn_rcpt NOTIFY/ORCPT as the
 * client gave them, or NULL. A queued recipient has no result of its own:
 * all of them share one, after the local recipients' (mailbox 0, uid 0),
 * so that a delivery with queued recipients only still hears of failure;
 * if they cannot be queued, the whole delivery fails with STORE_TEMP. The
 * body is kept until the queue lets go of it. */
void store_delivery_queue(struct store_delivery *d, const char *sender,
    const char *rcpt, const char *dsn_envelope, const char *dsn_rcpt);
/* All or nothing: when any recipient fails (over quota, ...), nothing is
 * stored and every result carries that recipient's error. SMTP uses it,
 * having one reply for the whole message. */
void store_delivery_set_atomic(struct store_delivery *d);
/* The body of d is complete: parses it now and lets go of the copy of a
 * small body that d keeps in memory until then (up to STORE_INLINE_MAX
 * bytes), so that the deliveries of a MULTIAPPEND chain hold their parsed
 * messages, not their bodies (64 messages just under 1 MiB held 64 MiB).
 * Optional; submitting does it otherwise. No write after it. */
void store_delivery_end(struct store_delivery *d);
/* Commits next together with d, after d: all of them or none (IMAP
 * MULTIAPPEND, RFC 3502), so each becomes atomic. The results are those
 * of d's recipients, then those of next's, in order. Takes next; neither
 * may have queued recipients. */
void store_delivery_chain(struct store_delivery *d,
    struct store_delivery *next);
/* In the same commit as d, and before d's message is stored, expunges
 * message uid of mailbox (a store id; IMAP REPLACE, RFC 8508). When that
 * message is gone, d fails with STORE_NOT_FOUND and stores nothing. */
void store_delivery_replace(struct store_delivery *d, int64_t mailbox,
    uint32_t uid);
/* Whether the message comes from a logged-in account (SMTP AUTH): its queue
 * entries say so (is_authenticated). Only such mail is DKIM-signed as
 * ours, and only its sender may be outside our domains and still hear of
 * a failure (no backscatter from forwarded mail). */
void store_delivery_set_authenticated(struct store_delivery *d,
    bool is_authenticated);
/* Files the message of every local recipient added without a mailbox
 * name in that account's \Junk mailbox (RFC 6154) instead of INBOX: the
 * first mailbox with that special use, else one called "Junk", else a
 * new "Junk" marked \Junk, created in the delivery's commit (DMARC's
 * quarantine). */
void store_delivery_set_junk(struct store_delivery *d, bool is_junk);
/* Asks for an RFC 3464 success report ("delivered") to sender about the
 * local recipient rcpt, when dsn_rcpt's NOTIFY lists SUCCESS (RFC 3461
 * §4.1) and sender is not the null sender; else does nothing. The request
 * is a queue entry (is_report) committed with the delivery, written only
 * when every local recipient took the message; the queue runner writes
 * the report. It shares the queued recipients' result. */
void store_delivery_notify(struct store_delivery *d, const char *sender,
    const char *rcpt, const char *dsn_envelope, const char *dsn_rcpt);

/* What happened to each recipient, in the order they were added. */
struct store_delivery_result {
	enum store_err err;	/* STORE_OK, STORE_OVER_QUOTA, ... */
	int64_t mailbox;
	uint32_t uidvalidity;
	uint32_t uid;
};

typedef void (*store_delivery_cb)(void *arg,
    const struct store_delivery_result *results, size_t n);

/* Commits the delivery through the writer; cb runs on base's thread once
 * it is durable (or failed). Takes d, also when it returns -1 (the store
 * is closing). */
int store_delivery_submit(struct store_delivery *d, struct event_base *base,
    store_delivery_cb cb, void *arg);
/* The same, waiting. Returns 0 and fills results_out (n entries, one per
 * recipient, each with its own err; caller frees), or -1 with nothing
 * filled when the store is closing. Takes d. */
int store_delivery_commit(struct store_delivery *d,
    struct store_delivery_result **results_out, size_t *n_out);
/* Drops a delivery that will not be committed. */
void store_delivery_abort(struct store_delivery **d);

/* Changes to messages of one mailbox, by UID set. */
enum store_flag_mode {
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
	STORE_FLAGS_REPLACE,
};

/* Keyword lists: space-separated IMAP flag atoms, compared
 * case-insensitively (RFC 9051 §2.3.2), kept in the case first seen
 * (store_name.c). The list after applying change in mode, as a STORE
 * leaves it (new string; NULL when empty); whether list holds keyword;
 * whether two lists hold the same keywords. */
char *store_keywords_apply(const char *old, const char *change,
    enum store_flag_mode mode);
bool has_store_keyword(const char *list, const char *keyword, size_t len);
bool is_store_keywords_equal(const char *a, const char *b);

struct store_change {
	int64_t mailbox;
	const uint32_t *uids;	/* borrowed; ascending */
	size_t nuids;
	enum store_change_kind {
		STORE_CHANGE_FLAGS,
		STORE_CHANGE_EXPUNGE,	/* the given UIDs */
		STORE_CHANGE_COPY,	/* to dst_mailbox */
		STORE_CHANGE_MOVE,	/* to dst_mailbox (RFC 6851) */
		STORE_CHANGE_RETRIEVED,	/* POP3 RETR: note the time */
	} kind;
	enum store_flag_mode mode;
	uint32_t flags;
	const char *keywords;	/* borrowed; space-separated or NULL */
	uint64_t unchangedsince;	/* CONDSTORE; 0: none */
	int64_t dst_mailbox;
};

/* What a change did: the new modseq of each changed UID; for COPY and MOVE
 * the destination's UIDVALIDITY and the new UIDs (RFC 4315 COPYUID); the
 * UIDs refused by UNCHANGEDSINCE (RFC 7162 MODIFIED). UIDs that do not
 * exist are skipped, as IMAP does for a UID set. */
struct store_change_result {
	enum store_err err;
	uint64_t modseq;	/* highest modseq of the mailbox after the
				 * change; every UID the change touched got
				 * it (RFC 7162 §3.1: one per change) */
	uint32_t dst_uidvalidity;
	uint32_t *src_uids, *dst_uids;
	size_t ncopied;
	uint32_t *modified;
	size_t nmodified;
};

void store_change_result_deinit(struct store_change_result *r);

typedef void (*store_change_cb)(void *arg,
    const struct store_change_result *result);

/* Applies c through the writer; cb runs on base's thread once the change
 * is durable, or failed (result->err). Copies what c borrows. Returns -1
 * and never calls back when the store is closing. result->err is
 * STORE_MODIFIED when UNCHANGEDSINCE refused some UIDs (listed in
 * modified) and the others were changed (RFC 7162 §3.1.3); STORE_INVALID
 * for UID 0, UIDs not ascending or bad keywords; STORE_NOT_FOUND for a
 * missing mailbox or dst_mailbox; STORE_OVER_QUOTA
 * when a COPY or MOVE would exceed the destination account's quota
 * (nothing is copied). */
int store_change_submit(struct store *st, const struct store_change *c,
    struct event_base *base, store_change_cb cb, void *arg);
/* The same, waiting: returns 0 when the change was applied (err STORE_OK
 * or STORE_MODIFIED), or -1 with result_out->err set. Deinit result_out
 * either way. */
int store_change_commit(struct store *st, const struct store_change *c,
    struct store_change_result *result_out);

/* ---- Notifications ---------------------------------------------------- */

/* Tells a session that mailbox changed (new messages, flags, expunges):
 * cb(arg) runs on base's thread after the change is durable; the session
 * then asks store_msg_changes() what changed. */
struct store_watch;

struct store_watch *store_watch_new(struct store *st, int64_t mailbox,
    struct event_base *base, void (*cb)(void *arg), void *arg);
/* After this returns, cb is never called again. Call on base's thread. */
void store_watch_free(struct store_watch **w);

/* Account watches (IMAP NOTIFY, RFC 5465): one per session for every
 * mailbox of an account, so that a session watching 100 mailboxes holds
 * one watch, not 100. The writer appends what each commit did to the
 * watch's pending events (message events of one mailbox merge into one
 * entry), and schedules cb(arg) on base's thread when none is scheduled;
 * the session then takes the events. */
enum store_event_kind {
	STORE_EVENT_NEW = 1 << 0,	/* messages came into mailbox */
	STORE_EVENT_EXPUNGE = 1 << 1,	/* messages left mailbox */
	STORE_EVENT_FLAGS = 1 << 2,	/* flags of messages changed */
	STORE_EVENT_CREATE = 1 << 3,	/* mailbox name was created */
	STORE_EVENT_DELETE = 1 << 4,	/* mailbox name was deleted */
	STORE_EVENT_RENAME = 1 << 5,	/* old_name became name */
	STORE_EVENT_SUBSCRIBE = 1 << 6,	/* name was subscribed */
	STORE_EVENT_UNSUBSCRIBE = 1 << 7,	/* name was unsubscribed */
};
#define STORE_EVENT_MESSAGE \
	(STORE_EVENT_NEW | STORE_EVENT_EXPUNGE | STORE_EVENT_FLAGS)

struct store_event {
	unsigned kind;		/* enum store_event_kind bits */
	uint64_t origin;	/* store_origin_set() of the thread that
				 * submitted it; 0: unknown, or merged
				 * from several */
	int64_t mailbox;	/* message events; else 0 */
	char *name;		/* name events; else NULL */
	char *old_name;		/* STORE_EVENT_RENAME; else NULL */
};

/* Marks what this thread submits from now on as coming from origin (0:
 * nobody in particular), until the next call; the events carry it, so
 * that a session can leave out its own changes (RFC 5465 §5). */
void store_origin_set(uint64_t origin);

/* Pending events a watch keeps before it gives up (overflow). */
#define STORE_ACCOUNT_WATCH_EVENTS_MAX 512

struct store_account_watch;

struct store_account_watch *store_account_watch_new(struct store *st,
    int64_t account, struct event_base *base, void (*cb)(void *arg),
    void *arg);
/* After this returns, cb is never called again. Call on base's thread. */
void store_account_watch_free(struct store_account_watch **w);
/* Takes the events gathered since the last call, in commit order (the
 * caller frees them with store_events_free). Returns false when more than
 * STORE_ACCOUNT_WATCH_EVENTS_MAX were pending and were dropped (nothing
 * is returned then, RFC 5465 §5.8). Call on base's thread. */
bool store_account_watch_take(struct store_account_watch *w,
    struct store_event **events_out, size_t *n_out);
void store_events_free(struct store_event **events, size_t n);

/* ---- Outbound queue --------------------------------------------------- */

/* One external recipient of a message waiting to go out (RFC 5321 §4.5.4),
 * as store_delivery_queue() put it there, with what the attempts so far
 * left: their number, the remote server's last reply and when the next
 * one is due. The body is the blob, kept while an entry holds it. */
enum store_queue_state {
	STORE_QUEUE_QUEUED,	/* waits for next_attempt */
	STORE_QUEUE_HELD,	/* an administrator stopped it */
};

struct store_queue_entry {
	int64_t id;
	int64_t blob;
	uint64_t size;		/* bytes of the body */
	char *sender;		/* "" for the null sender */
	char *rcpt;
	char *domain;		/* of rcpt (after its last '@'), lowercase */
	char *dsn_envelope;	/* RFC 3461 RET/ENVID as given, or NULL */
	char *dsn_rcpt;		/* RFC 3461 NOTIFY/ORCPT as given, or NULL */
	uint32_t attempts;
	int64_t created;	/* unix time */
	int64_t next_attempt;	/* unix time */
	int64_t lease_until;	/* a runner has it until then; 0: none */
	char *last_reply;	/* the last failure, or NULL */
	enum store_queue_state state;
	bool is_warned;		/* the sender heard of the delay */
	bool is_authenticated;	/* a logged-in account sent it
				 * (store_delivery_set_authenticated) */
	bool is_report;		/* not a recipient to send to: a success
				 * report to write about the local
				 * recipient rcpt (store_delivery_notify) */
};

void store_queue_entry_deinit(struct store_queue_entry *e);
void store_queue_list_free(struct store_queue_entry **list, size_t n);

/* Every entry, by id. */
int store_queue_list(struct store *st, struct store_queue_entry **list_out,
    size_t *n_out, enum store_err *err_out);
/* The entry id (STORE_NOT_FOUND when there is none). */
/* How many entries the queue holds (every row, held ones and success
 * reports included, as `postern queue list` shows them) and when the
 * oldest was queued (Unix time; 0 when empty), for /metrics. Returns 0,
 * or -1 with *err_out set. */
int store_queue_stats(struct store *st, uint64_t *n_out,
    int64_t *oldest_out, enum store_err *err_out);
int store_queue_get(struct store *st, int64_t id,
    struct store_queue_entry *e_out, enum store_err *err_out);

/* Claims at most max entries due at now (not held, next_attempt <= now,
 * no lease running) and leases them until now + lease seconds: a runner
 * that dies leaves them due again once the lease ends. Ordered by
 * next_attempt, then body, so that the recipients of one message come
 * together. An empty list is not an error. */
int store_queue_claim(struct store *st, int64_t now, int64_t lease,
    size_t max, struct store_queue_entry **list_out, size_t *n_out,
    enum store_err *err_out);
/* Ends every lease: a runner starting up knows no other runner uses this
 * store, so whatever a crashed one held is due again at once. */
int store_queue_unlease_all(struct store *st, enum store_err *err_out);

/* What an attempt at one recipient came to. */
enum store_queue_outcome {
	STORE_QUEUE_DELIVERED,	/* the peer said 250: the entry goes */
	STORE_QUEUE_DEFERRED,	/* 4xx or no connection: try again later */
	STORE_QUEUE_FAILED,	/* 5xx, or given up: the entry goes (the
				 * caller has bounced it first) */
};

/* Records the outcome for entry id. DEFERRED counts the attempt, keeps
 * reply (may be NULL) as the last reply, sets next_attempt and ends the
 * lease. DELIVERED and FAILED remove the entry; its body goes when
 * nothing else holds it. When e_out is not NULL it receives the entry as
 * it was before the change. STORE_NOT_FOUND when the entry is gone
 * (deleted meanwhile by an administrator). */
int store_queue_finish(struct store *st, int64_t id,
    enum store_queue_outcome outcome, const char *reply,
    int64_t next_attempt, struct store_queue_entry *e_out,
    enum store_err *err_out);
/* Notes that the sender was warned of the delay (is_warned). */
int store_queue_warned(struct store *st, int64_t id,
    enum store_err *err_out);

/* What an administrator does to entries (postern queue). */
enum store_queue_action {
	STORE_QUEUE_HOLD,	/* stop trying until released */
	STORE_QUEUE_RELEASE,	/* try again, at once */
	STORE_QUEUE_RETRY,	/* due at once; a held entry is released */
	STORE_QUEUE_DELETE,	/* drop without a bounce */
};

/* Applies action to entry id, or to every entry when id is 0 (RETRY:
 * every entry that is not held). *n_out (may be NULL) receives the
 * number of entries changed. STORE_NOT_FOUND when id names no entry. */
int store_queue_act(struct store *st, int64_t id,
    enum store_queue_action action, int64_t now, size_t *n_out,
    enum store_err *err_out);

/* ---- Migration map (postern migrate) ----------------------------------- */

/* What postern migrate copied from another server: for each message of a
 * source folder (source: "imap://user@host:port", folder: the source's
 * own name; both any text, they are keys), where its copy is here. A
 * delivery carries its entry (store_delivery_migrate) so that the entry
 * is committed with the message, never apart from it: a crash mid-run
 * leaves neither, and the next run copies the message again, once. */
struct store_migrate_entry {
	uint32_t uidvalidity;	/* the source folder's; 0 for POP3 */
	char *key;		/* the source UID in decimal, or the UIDL */
	int64_t mailbox;	/* the copy: mailbox id and UID here */
	uint32_t uid;
	uint32_t flags;		/* the source's flags as last copied */
	char *keywords;		/* the source's keywords as last copied */
	char *message_id;	/* Message-ID field body, or NULL */
	char *hash;		/* hex SHA-256 of the message bytes */
	uint64_t size;
};

/* Gives the delivery e (copied; its mailbox and uid are ignored): it is
 * written for the first local recipient, in the same commit as the
 * message, and only if that recipient took it. */
void store_delivery_migrate(struct store_delivery *d, int64_t account,
    const char *source, const char *folder,
    const struct store_migrate_entry *e);
/* Every entry of the folder, of any UIDVALIDITY, by UIDVALIDITY then
 * key; an empty list is not an error. Free with store_migrate_list_free. */
int store_migrate_list(struct store *st, int64_t account, const char *source,
    const char *folder, struct store_migrate_entry **list_out, size_t *n_out,
    enum store_err *err_out);
void store_migrate_list_free(struct store_migrate_entry **list, size_t n);
/* Writes e (insert or replace): flags seen at the source, or a message
 * matched again after a UIDVALIDITY change. */
int store_migrate_put(struct store *st, int64_t account, const char *source,
    const char *folder, const struct store_migrate_entry *e,
    enum store_err *err_out);
/* Removes the entries of the folder with that UIDVALIDITY, and that key
 * when key is not NULL. */
int store_migrate_del(struct store *st, int64_t account, const char *source,
    const char *folder, uint32_t uidvalidity, const char *key,
    enum store_err *err_out);
/* Where the last run of the folder ended: its UIDVALIDITY and
 * HIGHESTMODSEQ (0: none, RFC 7162 CONDSTORE not used). STORE_NOT_FOUND
 * before the first run. */
int store_migrate_folder_get(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t *uidvalidity_out,
    uint64_t *modseq_out, enum store_err *err_out);
int store_migrate_folder_set(struct store *st, int64_t account,
    const char *source, const char *folder, uint32_t uidvalidity,
    uint64_t modseq, enum store_err *err_out);

/* ---- Backup ----------------------------------------------------------- */

/* A consistent copy of the store for `postern backup` (DESIGN.md,
 * Storage: backup). The metadata is copied as of one moment (a read
 * transaction held while SQLite's online backup copies it in small steps;
 * the writer is never blocked) and every body file that copy names is
 * kept where it is until store_snapshot_free(), however much is expunged
 * meanwhile by this or any other process that has the store open: body
 * files are unlinked only under a lock that the snapshot holds shared. */
struct store_snapshot;

struct store_snapshot_blob {
	int64_t id;
	uint64_t size;		/* bytes of the body file */
};

/* Takes the snapshot. The metadata copy is a temporary file in the data
 * directory (unlinked at once, read through store_snapshot_db_fd), so the
 * data directory's file system needs room for it. progress (may be NULL)
 * is called after each step with the pages copied and the total. Returns
 * 0, or -1 with err set. */
int store_snapshot_new(struct store *st,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    struct store_snapshot **snap_out, char *err, size_t errlen);
/* The metadata copy, a self-contained SQLite database in rollback-journal
 * mode (borrowed; read it with pread). */
int store_snapshot_db_fd(const struct store_snapshot *snap);
/* The schema version of the copy. */
int64_t store_snapshot_schema(const struct store_snapshot *snap);
/* The blobs the copy names, by ascending id (borrowed). Open one with
 * store_blob_open(). */
const struct store_snapshot_blob *store_snapshot_blobs(
    const struct store_snapshot *snap, size_t *n_out);
/* Makes a hard link of blob's body file named name in dirfd (the same
 * file system). Returns 0, or -1 with errno set. */
int store_snapshot_blob_link(struct store_snapshot *snap, int64_t blob,
    int dirfd, const char *name);
/* Lets the store unlink body files again. */
void store_snapshot_free(struct store_snapshot **snap);

/* Where the embedded backend keeps blob's body, relative to the data
 * directory and in a backup: "blobs/xx/<id>". */
void store_blob_path(int64_t blob, char *buf, size_t len);
/* The name of the metadata database in the data directory and in a
 * backup. */
#define STORE_DB_NAME "store.db"
/* Checks a metadata copy (a backup's, or one being restored) without
 * changing it: opens db_path read-only, never through a symbolic link,
 * runs SQLite's integrity check and reads the schema version (a version
 * newer than this postern's is an error) and every blob with its size
 * (caller frees *blobs_out). Returns 0, or -1 with err set saying what
 * is wrong. */
int store_snapshot_file_check(const char *db_path,
    struct store_snapshot_blob **blobs_out, size_t *n_out,
    int64_t *schema_out, char *err, size_t errlen);
/* The same for the database open (read-only) on fd: SQLite reads that
 * file, the one whose bytes were checked through fd, not another one put
 * at its name since (-1 with err set if its name now is another file's).
 * Both also run with SQLITE_DBCONFIG_DEFENSIVE and trusted_schema off. */
int store_snapshot_fd_check(int fd, struct store_snapshot_blob **blobs_out,
    size_t *n_out, int64_t *schema_out, char *err, size_t errlen);

/* ---- Maintenance ------------------------------------------------------ */

/* Checks that every message has its body file, that no body file is an
 * orphan and that counters match; repairs what it can when is_repair.
 * Writes one line per finding to report (may be NULL). Returns the number
 * of problems found, or -1 when the store cannot be read. */
int store_check(struct store *st, bool is_repair,
    void (*report)(void *arg, const char *line), void *arg);

/* ---- Metadata (RFC 5464; store_metadata.c) ---------------------------- */

/* Entries are (account, mailbox, name) -> bytes. mailbox 0 holds the
 * server's entries. A "/private/..." entry belongs to the account that
 * wrote it; a "/shared/..." entry of a mailbox to the mailbox's owner,
 * one of the server to account 0 (written only by the administrator).
 * Names are stored lowercase (entry names are case-insensitive, RFC 5464
 * §3.2). Rows go with their mailbox (DELETE) and their account, and follow
 * the mailbox through RENAME (they name it by id). */
#define STORE_METADATA_NAME_MAX 1024

struct store_metadata {
	char *name;
	char *value;		/* len bytes and a NUL; NULL: delete */
	size_t len;
};

/* The entries of mailbox (0: the server) that account sees: its private
 * ones and the shared ones (of the server: account 0's), by name. The
 * mailbox's special use is not a row (IMAP shows it as
 * /private/specialuse). Caller frees with store_metadata_list_free. */
int store_metadata_list(struct store *st, int64_t account, int64_t mailbox,
    struct store_metadata **list_out, size_t *n_out,
    enum store_err *err_out);
void store_metadata_list_free(struct store_metadata **list, size_t n);

struct store_metadata_op {
	int64_t account;	/* who writes: 0 for the administrator */
	int64_t mailbox;	/* 0: the server; else one of account's */
	const struct store_metadata *entries;	/* copied */
	size_t n;
	/* Rows the account may hold in all after the change (RFC 5464
	 * §4.3 TOOMANY): beyond, STORE_NOT_ALLOWED and nothing changes. */
	size_t entries_max;
	/* Bytes of values the account may hold in all after the change (0:
	 * no bound): beyond, STORE_OVER_QUOTA and nothing changes. */
	uint64_t total_max;
};

/* Sets or deletes (value NULL) every entry of op in one commit, all or
 * none (RFC 5464 §4.3). "/private/specialuse" of a mailbox sets its
 * special use instead: NULL or one name of store_special_name(), else
 * STORE_INVALID. A mailbox that is gone (or not account's) is
 * STORE_NOT_FOUND. cb runs on base's thread once durable; returns -1 and
 * never calls back when the store is closing. */
int store_metadata_submit(struct store *st,
    const struct store_metadata_op *op, struct event_base *base,
    store_mailbox_cb cb, void *arg);
/* The same, waiting (the administrator's command, tests). */
int store_metadata_set(struct store *st, const struct store_metadata_op *op,
    enum store_err *err_out);

#endif
