/*
 * store_backend: the function table every store backend fills (STYLE.md):
 * the embedded one (store_sqlite*.c) today, PostgreSQL later. store.c
 * checks arguments, normalizes names and runs the writer thread; a backend
 * only reads and writes its own data.
 *
 * Threads. open and close run on the thread calling store_open() and
 * store_close(). batch_run and idle run only on the writer thread. Every
 * read may run on any thread, concurrently with the writer and with each
 * other. Names given to a backend are already normalized (store_name_*).
 */
#ifndef POSTERN_STORE_BACKEND_H
#define POSTERN_STORE_BACKEND_H

#include "store/store_int.h"

struct store_backend {
	const char *name;

	/* Opens the backend's data for st (st->data_dir), creating or
	 * migrating it, and sets st->be_state. Returns 0, or -1 with err. */
	int (*open)(struct store *st, char *err, size_t errlen);
	/* Frees st->be_state; the writer has stopped. */
	void (*close)(struct store *st);

	/* Writer thread: applies every request durably, in one transaction
	 * when it can, and sets each request's results and touched
	 * mailboxes. A request that fails leaves no trace and does not fail
	 * the others. Returns once the successful ones are durable. */
	void (*batch_run)(struct store *st, struct store_req **reqs,
	    size_t n);
	/* Writer thread, when no request waits: does a little background
	 * work (the full-text index). Returns true if more is left. */
	bool (*idle)(struct store *st);

	/* Reads; each returns 0, or -1 with *err_out set. */
	int (*subscription_list)(struct store *st, int64_t account,
	    char ***names_out, enum store_err *err_out);
	/* 1 if name is subscribed, 0 if not, -1. */
	int (*subscription_has)(struct store *st, int64_t account,
	    const char *name, enum store_err *err_out);
	int (*domain_list)(struct store *st, char ***names_out,
	    enum store_err *err_out);
	/* The domain's catch-all target (NULL: none); STORE_NOT_FOUND when
	 * the domain is not ours. */
	int (*domain_get)(struct store *st, const char *domain,
	    char **catchall_out, enum store_err *err_out);
	/* By address when address is not NULL, else by id. */
	int (*account_get)(struct store *st, const char *address, int64_t id,
	    struct store_account *a_out, enum store_err *err_out);
	int (*account_list)(struct store *st, const char *domain,
	    struct store_account **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*account_usage)(struct store *st, int64_t account,
	    uint64_t *bytes_out, uint64_t *messages_out,
	    enum store_err *err_out);
	/* Targets of address; an empty list is STORE_NOT_FOUND. */
	int (*alias_targets)(struct store *st, const char *address,
	    char ***targets_out, enum store_err *err_out);
	int (*alias_list)(struct store *st, char ***pairs_out,
	    enum store_err *err_out);
	/* An account without app passwords has an empty list; a missing
	 * account is STORE_NOT_FOUND. */
	int (*app_password_list)(struct store *st, int64_t account,
	    struct store_app_password **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*mailbox_get)(struct store *st, int64_t account,
	    const char *name, struct store_mailbox *mb_out,
	    enum store_err *err_out);
	int (*mailbox_get_id)(struct store *st, int64_t account, int64_t id,
	    struct store_mailbox *mb_out, enum store_err *err_out);
	int (*mailbox_list)(struct store *st, int64_t account,
	    struct store_mailbox **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*msg_list)(struct store *st, int64_t mailbox, uint32_t uid_min,
	    uint32_t uid_max, struct store_msg **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*msg_changes)(struct store *st, int64_t mailbox, uint64_t modseq,
	    struct store_msg **changed_out, size_t *nchanged_out,
	    uint32_t **expunged_out, size_t *nexpunged_out,
	    uint64_t *highestmodseq_out, enum store_err *err_out);
	/* s_out[] is initialised (store_structure_deinit-able); the
	 * backend fills what it finds. */
	int (*blob_structures)(struct store *st, const int64_t *blobs,
	    size_t n, struct store_structure *s_out, bool *is_found_out,
	    enum store_err *err_out);
	/* Returns an fd, or -1 with *err_out set. */
	int (*blob_open)(struct store *st, int64_t blob,
	    enum store_err *err_out);
	/* Backup (store.h, store_snapshot_new): fills snap (its fds are
	 * -1 on entry) with the metadata copy, the lock that keeps body
	 * files, the schema version and the blobs. Returns 0, or -1 with
	 * err set. */
	int (*snapshot)(struct store *st, struct store_snapshot *snap,
	    void (*progress)(void *arg, uint64_t done, uint64_t total),
	    void *arg, char *err, size_t errlen);
	/* Hard-links blob's file as name in dirfd; 0, or -1 with errno. */
	int (*blob_link)(struct store *st, int64_t blob, int dirfd,
	    const char *name);
	/* The tree is already checked (store.c). */
	int (*search)(struct store *st, int64_t mailbox,
	    const struct store_cond *cond, uint32_t **uids_out,
	    size_t *n_out, enum store_err *err_out);
	/* store_sort_list; rows stored before the ids were kept set
	 * is_ids_unknown (store.c reads those from the header). */
	int (*sort_list)(struct store *st, int64_t mailbox, uint32_t uid_min,
	    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
	    size_t *n_out, enum store_err *err_out);
	/* The outbound queue (store.h); changes go through batch_run as
	 * STORE_REQ_QUEUE. */
	int (*queue_list)(struct store *st,
	    struct store_queue_entry **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*queue_get)(struct store *st, int64_t id,
	    struct store_queue_entry *e_out, enum store_err *err_out);
	int (*queue_stats)(struct store *st, uint64_t *n_out,
	    int64_t *oldest_out, enum store_err *err_out);
	/* The migration map (store.h); changes go through batch_run as
	 * STORE_REQ_MIGRATE, and with a delivery (d->migrate). */
	int (*migrate_list)(struct store *st, int64_t account,
	    const char *source, const char *folder,
	    struct store_migrate_entry **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*migrate_folder_get)(struct store *st, int64_t account,
	    const char *source, const char *folder, uint32_t *uidvalidity_out,
	    uint64_t *modseq_out, enum store_err *err_out);
	/* Access control (store.h, RFC 4314); changes go through
	 * batch_run as STORE_REQ_ACL. */
	/* Metadata (store.h); changes go through batch_run as
	 * STORE_REQ_METADATA. */
	int (*metadata_list)(struct store *st, int64_t account,
	    int64_t mailbox, struct store_metadata **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*acl_rights)(struct store *st, int64_t account, int64_t mailbox,
	    uint32_t *rights_out, int64_t *owner_out,
	    enum store_err *err_out);
	int (*acl_list)(struct store *st, int64_t mailbox,
	    struct store_acl_entry **list_out, size_t *n_out,
	    enum store_err *err_out);
	int (*acl_shared_list)(struct store *st, int64_t account,
	    struct store_acl_shared **list_out, size_t *n_out,
	    enum store_err *err_out);
	/* \Recent (store_recent.c): the first UID of the mailbox (with that
	 * UIDVALIDITY, else STORE_NOT_FOUND) no session has claimed, as
	 * committed; and how many of its messages have a UID of at least
	 * uid. Changes go through batch_run as STORE_REQ_RECENT_SET. */
	int (*recent_get)(struct store *st, int64_t mailbox,
	    uint32_t uidvalidity, uint32_t *uid_out, enum store_err *err_out);
	int (*recent_count)(struct store *st, int64_t mailbox, uint32_t uid,
	    uint32_t *n_out, enum store_err *err_out);
};

/* The embedded backend (store_sqlite.c). */
extern const struct store_backend store_sqlite_backend;

#endif
