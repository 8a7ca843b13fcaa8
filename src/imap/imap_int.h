/*
 * imap_int.h: what the files of src/imap share. One struct imap_session per
 * connection, on its connection's worker thread.
 *
 * Commands run one at a time. The session reads a command, checks its
 * state, and calls its handler with s->cmd set. The handler ends the
 * command by calling imap_done() exactly once: at once, or later from a
 * store or auth callback, or when a streamed reply has been sent. Until
 * then the session reads no further command (input stays buffered; what
 * the client pipelined is read afterwards).
 *
 * Untagged updates about the selected mailbox (EXISTS, EXPUNGE or
 * VANISHED, FETCH FLAGS) are sent by imap_done() just before the tagged
 * reply, following RFC 9051 §7.5.1 (no EXPUNGE while answering FETCH,
 * STORE or SEARCH), and at once while in IDLE. Handlers never send them
 * themselves; a handler that changed the selected mailbox sets
 * s->view->is_stale so that imap_done() looks.
 *
 * Waiting for a callback: the handler calls imap_wait(s) before it submits
 * work whose callback gets s (imap_wait_cancel(s) if the submission
 * fails), and the callback's first statement is
 * "if (!imap_resumed(s)) return;" (the connection closed meanwhile: the
 * session is freed by net after this loop turn, and the callback must do
 * nothing more; net.h, net_conn_wait).
 */
#ifndef POSTERN_IMAP_INT_H
#define POSTERN_IMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/auth.h"
#include "imap/imap.h"
#include "imap/imap_notify.h"
#include "imap/imap_parser.h"
#include "lib/config.h"
#include "store/store.h"

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
};

/* One message of the selected mailbox as this session has told the client
 * of it; view->msgs[i] has sequence number i + 1. 8 bytes, because every
 * idle session keeps one per message: keywords live apart (few messages
 * have any), MODSEQs too (view->modseqs, only once the session uses
 * CONDSTORE), and size, date and body are asked of the store by the
 * commands that need them. */
struct imap_msg {
	uint32_t uid;
	uint16_t flags;		/* enum store_flag bits */
	bool has_keywords : 1;	/* an entry in view->keywords */
	bool is_expunged : 1;	/* gone from the store, not yet announced:
				 * keeps its number until then */
	bool is_recent : 1;	/* \Recent for this session (RFC 3501
				 * §2.3.2; never set under IMAP4rev2) */
};

/* \Recent among the flags imap_write_flags() writes: not a store flag,
 * it belongs to the session (imap_view_flags). */
#define IMAP_FLAG_RECENT (1u << 16)

/* The keywords of one message of the view. */
struct imap_msg_keywords {
	uint32_t uid;
	char *list;		/* owned; space-separated, never empty */
};

/* The selected mailbox (imap_view.c). */
struct imap_view {
	int64_t mailbox;
	char *name;		/* UTF-8, as the client names it ("Other
				 * Users/..." for another user's) */
	int64_t owner;		/* the account whose mailbox it is */
	uint32_t rights;	/* enum store_acl_right bits: all for the
				 * owner; read again before each command
				 * otherwise (imap_acl_view_check) */
	bool is_revoked;	/* another user's, and "r" was withdrawn */
	bool is_readonly;	/* EXAMINE, or no right to change it */
	bool is_recent_claimer;	/* takes \Recent (store_recent_claim): the
				 * owner's read-write view only */
	uint32_t uidvalidity;
	uint32_t uidnext;	/* above every UID the session knows */
	uint64_t modseq;	/* HIGHESTMODSEQ the session has caught up with */
	struct imap_msg *msgs;
	size_t n, cap;
	/* The MODSEQ of msgs[i] as the session knows it (cap entries), or
	 * NULL: read only once the session uses CONDSTORE (RFC 7162 §3.1),
	 * by imap_view_modseq(); 8 bytes a message most sessions never
	 * ask for. */
	uint64_t *modseqs;
	size_t nrecent;		/* messages with is_recent */
	struct imap_msg_keywords *keywords;	/* by UID */
	size_t nkeywords, keywords_cap;
	struct store_watch *watch;
	bool is_stale;		/* changed since the last look */
	uint32_t *saved;	/* SEARCHRES "$" (RFC 5182): UIDs, ascending */
	size_t nsaved;
	/* Every keyword the view has held, as the FLAGS response lists
	 * them (RFC 9051 §7.3.5); is_flags_pending: one was added since the
	 * client last heard FLAGS. */
	char **known;
	size_t nknown, known_cap;
	bool is_flags_pending;
};

struct imap_session {
	struct net_conn *conn;
	struct event_base *base;
	struct imap_ctx *ctx;
	const struct config *cfg;
	char sid[24];
	enum imap_state state;
	struct auth_identity id;	/* who logged in */
	struct imap_parser parser;
	struct imap_cmd *cmd;	/* the command running, or NULL */
	struct imap_view *view;	/* the selected mailbox, or NULL */
	bool is_rev2;		/* ENABLE IMAP4rev2 */
	bool is_utf8;		/* IMAP4rev2 or UTF8=ACCEPT: names in UTF-8,
				 * not modified UTF-7 */
	bool is_condstore;	/* RFC 7162 §3.1: MODSEQ in FETCH replies */
	bool is_qresync;	/* RFC 7162 §3.2: VANISHED, not EXPUNGE */
	bool is_uidonly;	/* RFC 9586: UIDs only; UIDFETCH, VANISHED */
	struct imap_notify *notify;	/* NOTIFY (imap_cmd_notify.c), or
					 * NULL: never used */

	/* A command in progress across callbacks (a streamed FETCH...):
	 * job_drained runs when the output has drained below NET_DRAIN_LOW;
	 * job_free(job) runs at imap_done() and when the connection
	 * closes. Set by the handler, cleared by the session. */
	void *job;
	void (*job_drained)(struct imap_session *s);
	void (*job_free)(void *job);

	/* Private to imap_session.c. */
	unsigned errors;
	bool is_idle;
	bool is_stream_new;	/* STARTTLS or COMPRESS: input restarts */
	struct auth_exchange auth;	/* AUTHENTICATE */
};

/* ---- Replies (imap_session.c) ---------------------------------------- */

/* Replies gathered in pieces and written in 4 KiB blocks (SEARCH, SORT,
 * THREAD: many small numbers). Flush before imap_done(). */
struct imap_out {
	struct imap_session *s;
	char buf[4096];
	size_t len;
};

void imap_out_flush(struct imap_out *o);
void imap_out_printf(struct imap_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_write(struct imap_session *s, const void *data, size_t len);
void imap_printf(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A string as an IMAP string: quoted when it can be (no CR, LF or NUL, no
 * 8-bit byte unless s->is_utf8, shorter than 1 KiB), else a literal. */
void imap_write_string(struct imap_session *s, const char *str, size_t len);
/* The same, or NIL for a NULL str. */
void imap_write_nstring(struct imap_session *s, const char *str,
    size_t len);
/* A store mailbox name, in modified UTF-7 unless s->is_utf8. */
void imap_write_mailbox(struct imap_session *s, const char *name);
/* "(\Seen \Flagged keyword ...)"; \Recent with IMAP_FLAG_RECENT. */
void imap_write_flags(struct imap_session *s, uint32_t flags,
    const char *keywords);

/* Ends s->cmd: sends the pending untagged updates, then
 * "<tag> <status> <text>\r\n" (status "OK", "NO" or "BAD"; the text may
 * start with a response code "[TRYCREATE] ..."), frees the command and its
 * job, and reads the next command. */
void imap_done(struct imap_session *s, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void imap_wait(struct imap_session *s);
bool imap_resumed(struct imap_session *s);
void imap_wait_cancel(struct imap_session *s);

/* ---- Flags, dates, names ---------------------------------------------- */

/* Parses a flag list (a LIST of atoms, or one atom) into system flag bits
 * and a new space-separated keyword string (NULL when none). \Recent and
 * unknown backslash flags are refused. Returns 0, or -1. */
int imap_flags_parse(const struct imap_arg *a, uint32_t *flags_out,
    char **keywords_out);

#define IMAP_DATE_TIME_LEN 27	/* "23-Nov-2026 12:00:00 +0000" + NUL */
/* RFC 9051 date-time in UTC, for INTERNALDATE. */
void imap_date_time_format(int64_t t, char out[IMAP_DATE_TIME_LEN]);
/* Parses date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", day may be " d"). */
bool imap_date_time_parse(const char *str, int64_t *t_out);
/* Parses a SEARCH date ("d-Mon-yyyy" or "dd-Mon-yyyy"): midnight UTC. */
bool imap_date_parse(const char *str, int64_t *t_out);

/* A mailbox name or LIST pattern as the client sent it, as a store name
 * (UTF-8, INBOX normalized), or NULL when not valid. Caller frees. */
char *imap_name_decode(struct imap_session *s, const char *str, size_t len);
/* Ends the command with the reply to a store error about a mailbox
 * (NONEXISTENT, ALREADYEXISTS, CANNOT, OVERQUOTA, UNAVAILABLE). */
void imap_done_store_err(struct imap_session *s, enum store_err err);
/* STATUS items (imap_cmd_mailbox.c): the bits of a list such as
 * (MESSAGES UNSEEN), or 0 when it is not one; and the STATUS line of a
 * mailbox (LIST-STATUS uses both). */
unsigned imap_status_items_parse(const struct imap_arg *a);
void imap_status_write(struct imap_session *s,
    const struct store_mailbox *mb, unsigned bits);

/* The store name a mailbox argument means (decoded from modified UTF-7
 * unless s->is_utf8, "INBOX" in any case made INBOX), or NULL (bad
 * encoding, empty, too long). Caller frees. */
char *imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a);

/* ---- Access control, RFC 4314, and other users' mailboxes (imap_acl.c) */

/* RFC 2342 §5: the other users' namespace: "Other Users/ADDRESS/NAME" is
 * the mailbox NAME of the account ADDRESS. */
#define IMAP_ACL_OTHER_USERS "Other Users"
/* Longest rights string and identifier read from a client. */
#define IMAP_ACL_RIGHTS_MAX 64
#define IMAP_ACL_IDENT_MAX 255
/* The rights in RFC 4314 §2.1 order, bit i of enum store_acl_right is
 * letter i. */
#define IMAP_ACL_RIGHTS_LETTERS "lrswipkxtea"
/* Room for a formatted rights string ("lrswipkxtea" and "cd"). */
#define IMAP_ACL_RIGHTS_LEN 16

/* Rights letters (RFC 4314 §2.1; "c" and "d" as §2.1.1) into enum
 * store_acl_right bits. Returns 0, or -1 for a letter we do not know. */
int imap_acl_rights_parse(const char *str, size_t len, uint32_t *rights_out);
void imap_acl_rights_format(uint32_t rights, char out[IMAP_ACL_RIGHTS_LEN]);
/* An identifier (RFC 4314 §2): "anyone" or an address, either after "-"
 * for negative rights. *address_out is a new string (NULL for anyone).
 * Returns 0, or -1 when it is neither. */
int imap_acl_ident_parse(const char *str, size_t len, bool *is_negative_out,
    bool *is_anyone_out, char **address_out);
/* Whether a client name lies in the other users' namespace. */
bool is_imap_acl_other_name(const char *name);
/* "Other Users/ADDRESS/NAME" (new string). */
char *imap_acl_other_name(const char *owner_address, const char *name);

/* A mailbox as one user reaches it. */
struct imap_box {
	int64_t owner;		/* the account whose mailbox it is */
	char *name;		/* the owner's name for it */
	char *client_name;	/* the user's name for it */
	char *owner_address;	/* another user's address, or NULL */
	uint32_t rights;	/* the user's (enum store_acl_right) */
	bool is_found;		/* mb is filled (its name: client_name) */
	struct store_mailbox mb;
};
enum {
	IMAP_BOX_OK = 0,
	IMAP_BOX_ERR = -1,	/* *err_out: NOT_FOUND, TEMP, ... */
	IMAP_BOX_NOPERM = -2,	/* the user may see it, not do this */
};
/* Splits a client name (imap_mailbox_arg's) into owner and name, without
 * reading the mailbox. Returns 0, or -1 when it names no mailbox the user
 * could reach (answer as for a missing one). Deinit b either way. */
int imap_box_resolve(struct imap_session *s, const char *client_name,
    struct imap_box *b);
/* Resolves and reads the mailbox, with the user's rights on it, and
 * checks that they hold every right of need. Returns IMAP_BOX_OK, or
 * IMAP_BOX_ERR / IMAP_BOX_NOPERM with *err_out set: a mailbox the user
 * may not look up is STORE_NOT_FOUND like a missing one (RFC 4314 §6).
 * Deinit b either way. */
int imap_box_get(struct imap_session *s, const char *client_name,
    uint32_t need, struct imap_box *b, enum store_err *err_out);
/* The same check for rights already known. */
int imap_box_allowed(uint32_t rights, uint32_t need, enum store_err *err_out);
void imap_box_deinit(struct imap_box *b);
/* Ends the command with the reply to imap_box_get's failure. */
void imap_done_box_err(struct imap_session *s, int rc, enum store_err err);
/* Reads again the rights on another user's selected mailbox into the view.
 * Returns false when "r" is gone (or the mailbox): the view must show
 * nothing more. True for one's own mailboxes. */
bool imap_acl_view_check(struct imap_session *s);
/* Whether rights allow a STORE of flags and keywords (is_replace: FLAGS,
 * which may clear any flag). */
bool is_imap_acl_flags_allowed(uint32_t rights, uint32_t flags,
    const char *keywords, bool is_replace);
/* Drops from an APPEND's flags and keywords (freed when dropped) what
 * rights do not allow setting. */
void imap_acl_flags_mask(uint32_t rights, uint32_t *flags, char **keywords);
/* Before each command: closes such a view (* OK [CLOSED]) and leaves the
 * session authenticated. Returns false when it did. */
bool imap_acl_dispatch_check(struct imap_session *s);

/* ---- OBJECTID, RFC 8474 (imap_objectid.c) ---------------------------- */

/* MAILBOXID of the account's mailbox (store id, UIDVALIDITY). */
void imap_mailbox_id(struct imap_session *s, int64_t mailbox,
    uint32_t uidvalidity, char out[AUTH_OBJECT_ID_LEN]);
/* EMAILID of a message of the account, by its body (store_msg.blob). */
void imap_email_id(struct imap_session *s, int64_t blob,
    char out[AUTH_OBJECT_ID_LEN]);
/* The UIDs of the selected mailbox whose EMAILID is id, ascending (caller
 * frees; NULL when none). Returns 0, or -1 with *err_out set. */
int imap_email_id_uids(struct imap_session *s, const char *id,
    uint32_t **uids_out, size_t *n_out, enum store_err *err_out);

/* ---- The selected mailbox (imap_view.c) ------------------------------- */

/* Opens name (a client name, imap_box_get) for SELECT (or EXAMINE with
 * is_readonly) into s->view, closing any previous one. Returns 0, or
 * IMAP_BOX_ERR / IMAP_BOX_NOPERM with *err_out set. */
int imap_view_open(struct imap_session *s, const char *name,
    bool is_readonly, enum store_err *err_out);
void imap_view_close(struct imap_session *s);
/* Catches up with the store when the view is stale (or is_forced) and
 * sends what changed: EXISTS for new messages, FETCH (FLAGS ...) for
 * changed flags, and, when may_expunge, EXPUNGE or VANISHED for messages
 * gone (else they stay numbered, marked is_expunged). */
/* Output queued for the client beyond which changes to the selected
 * mailbox wait (imap_view.c): unsolicited FETCH lines to a client that
 * does not read are not queued without bound. */
#define IMAP_VIEW_OUTPUT_MAX (16 * NET_DRAIN_LOW)
/* The output drained: sends the selected mailbox's changes held back. */
void imap_view_drained(struct imap_session *s);
void imap_view_sync(struct imap_session *s, bool may_expunge,
    bool is_forced);
/* Sends FLAGS and PERMANENTFLAGS when a keyword the client has not heard
 * of came into the view. Call it before any reply that shows flags: RFC
 * 9051 §7.3.5 (RFC 3501 §7.2.6) lets a client reject a keyword that FLAGS
 * did not list. */
void imap_view_flags_announce(struct imap_session *s);
/* Writes the FLAGS and PERMANENTFLAGS responses of the view (SELECT). */
void imap_view_flags_write(struct imap_session *s);
/* The flags of view->msgs[i] as the session shows them: the store's,
 * with IMAP_FLAG_RECENT when it is recent for an IMAP4rev1 session. */
uint32_t imap_view_flags(const struct imap_session *s, size_t i);
/* The MODSEQ of view->msgs[i] (RFC 7162 §3.1.2) as the session knows it;
 * the first call reads them all from the store. */
uint64_t imap_view_modseq(struct imap_session *s, size_t i);
/* Index into view->msgs of uid, or SIZE_MAX. */
size_t imap_view_find(const struct imap_view *v, uint32_t uid);
/* Resolves a sequence set argument (sequence numbers, or UIDs when
 * is_uid; "$" for the saved search) into ascending indexes of view->msgs
 * (the caller frees *idx_out). UIDs not in the view are skipped. Returns
 * 0; -1 when the atom is not a sequence set; -2 when a sequence number is
 * beyond the last message (RFC 9051 §6.4.4: BAD). */
int imap_view_set(struct imap_session *s, const struct imap_arg *a,
    bool is_uid, size_t **idx_out, size_t *n_out);
/* The same for a SEARCH key: sequence numbers beyond the last message
 * name nothing instead of failing (never returns -2). */
int imap_view_set_clamped(struct imap_session *s, const struct imap_arg *a,
    bool is_uid, size_t **idx_out, size_t *n_out);
/* The keywords of view->msgs[i] (space-separated), or NULL. */
const char *imap_view_keywords(const struct imap_view *v, size_t i);
/* Updates what the session knows of view->msgs[i] after its own STORE;
 * keywords may be imap_view_keywords(v, i). */
void imap_view_update(struct imap_view *v, size_t i, uint32_t flags,
    const char *keywords, uint64_t modseq);

/* ---- METADATA, RFC 5464 (imap_metadata.c) ---------------------------- */

/* Entries named in one GETMETADATA or SETMETADATA. */
#define IMAP_METADATA_ENTRIES_MAX 256

/* An entry name as the client sent it, checked (RFC 5464 §3.2: starts
 * with /private or /shared, no "*", "%", "//" or trailing "/"; printable
 * ASCII) and lowercased into *norm_out (caller frees). is_set: the name
 * must be below /private or /shared. Returns 0, or -1 with *error_out. */
int imap_metadata_name_norm(const char *s, size_t len, bool is_set,
    char **norm_out, const char **error_out);

enum imap_metadata_depth {
	IMAP_METADATA_DEPTH_0,
	IMAP_METADATA_DEPTH_1,
	IMAP_METADATA_DEPTH_INFINITY,
};

/* GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries (RFC 5464 §4.2). */
struct imap_metadata_get {
	const struct imap_arg *mailbox;	/* borrowed from the command */
	bool has_maxsize;
	uint64_t maxsize;
	enum imap_metadata_depth depth;
	char **names;		/* owned, normalized */
	size_t n;
};

/* SETMETADATA mailbox (entry value ...) (RFC 5464 §4.3). */
struct imap_metadata_set {
	const struct imap_arg *mailbox;	/* borrowed from the command */
	/* Names owned and normalized; values borrowed from the command,
	 * NULL for NIL. */
	struct store_metadata *entries;
	size_t n;
};

/* Each returns 0, or -1 with *error_out (the text of a BAD) and nothing
 * to deinit. */
int imap_metadata_get_parse(const struct imap_cmd *cmd,
    struct imap_metadata_get *g, const char **error_out);
void imap_metadata_get_deinit(struct imap_metadata_get *g);
int imap_metadata_set_parse(const struct imap_cmd *cmd,
    struct imap_metadata_set *m, const char **error_out);
void imap_metadata_set_deinit(struct imap_metadata_set *m);

/* ---- Command handlers ------------------------------------------------- */

typedef void imap_handler(struct imap_session *s, const struct imap_cmd *cmd);

/* imap_session.c */
imap_handler imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
    imap_cmd_starttls, imap_cmd_compress, imap_cmd_login,
    imap_cmd_authenticate,
    imap_cmd_enable, imap_cmd_id, imap_cmd_idle, imap_cmd_close,
    imap_cmd_unselect;
/* imap_cmd_mailbox.c: SELECT and EXAMINE; CREATE, DELETE, RENAME; SUBSCRIBE
 * and UNSUBSCRIBE; STATUS; NAMESPACE. imap_cmd_list.c: LIST and LSUB. */
imap_handler imap_cmd_select, imap_cmd_create, imap_cmd_delete,
    imap_cmd_rename, imap_cmd_subscribe, imap_cmd_list, imap_cmd_status,
    imap_cmd_namespace;
/* imap_cmd_fetch.c: FETCH and UID FETCH. imap_cmd_store.c: STORE. */
imap_handler imap_cmd_fetch, imap_cmd_store;
/* imap_cmd_search.c: SEARCH and UID SEARCH. */
imap_handler imap_cmd_search;
/* imap_cmd_sort.c: SORT and UID SORT. imap_cmd_thread.c: THREAD. */
imap_handler imap_cmd_sort, imap_cmd_thread;
/* imap_cmd_copy.c: COPY, MOVE and their UID forms; EXPUNGE, UID EXPUNGE. */
imap_handler imap_cmd_copy, imap_cmd_expunge;
/* imap_cmd_append.c: APPEND (MULTIAPPEND), REPLACE and UID REPLACE. */
imap_handler imap_cmd_append, imap_cmd_replace;
/* imap_acl.c: MYRIGHTS, GETACL, LISTRIGHTS, SETACL, DELETEACL (RFC 4314). */
imap_handler imap_cmd_myrights, imap_cmd_getacl, imap_cmd_listrights,
    imap_cmd_setacl;
/* imap_cmd_metadata.c: GETMETADATA, SETMETADATA (RFC 5464). */
imap_handler imap_cmd_getmetadata, imap_cmd_setmetadata;
/* imap_cmd_quota.c: GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208). */
imap_handler imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota;

/* added by search */
/* imap_cmd_search.c: SEARCH keys (RFC 9051 §6.4.4) as one store condition.
 * root is the AND of the keys. Sequence sets (and UID sets) among the keys
 * of the top level are kept apart in in_set, one bool per view message
 * (NULL when there are none); deeper ones become UID ranges. Texts borrow
 * from the command's arguments. */
struct imap_search_keys {
	struct store_cond root;
	bool *in_set;
	bool has_modseq;	/* the MODSEQ key was used (RFC 7162 §3.1.5) */
	bool is_no;		/* on error: NO, else BAD */
	const char *error;	/* on error: the reply text */
	char **owned;		/* strings root points to */
	size_t nowned;
};
/* Parses args[0..nargs) against s->view. Returns 0, or -1 with error and
 * is_no set; deinit k either way. */
int imap_search_keys_parse(struct imap_session *s,
    const struct imap_arg *args, size_t nargs, struct imap_search_keys *k);
void imap_search_keys_deinit(struct imap_search_keys *k);

/* added by sort */
/* imap_cmd_sort.c: what SORT and THREAD share. The view messages the
 * search keys match, in view order, each with its cached data (rows[i].msg
 * points into list; rows[i].at is its index in the view). */
struct imap_sort_row {
	const struct store_sort_msg *msg;
	size_t at;
};
struct imap_sort_rows {
	struct imap_sort_row *rows;
	size_t n;
	struct store_sort_msg *list;
	size_t nlist;
	bool has_modseq;	/* the MODSEQ key was used (RFC 7162 §3.1.5) */
	bool is_no;		/* on error: NO, else BAD */
	const char *error;	/* on error: the reply text */
};
/* Runs the search keys args[0..nargs) on s->view and reads the matches'
 * data (what: enum store_sort_what bits). Returns 0, or -1 with error and
 * is_no set (r then needs no deinit). */
int imap_sort_rows_get(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, unsigned what, struct imap_sort_rows *r);
void imap_sort_rows_deinit(struct imap_sort_rows *r);
/* RFC 7162 §3.1.5: after the MODSEQ key, enables CONDSTORE (sending
 * HIGHESTMODSEQ) and returns the highest MODSEQ among r's messages. */
uint64_t imap_sort_modseq(struct imap_session *s,
    const struct imap_sort_rows *r);
/* RFC 5256 §2.2: the sent date (Date:, else the internal date). */
int64_t imap_sort_sent_date(const struct store_sort_msg *m);
/* Is a the charset argument of SORT or THREAD we know (UTF-8, US-ASCII)? */
bool is_imap_sort_charset(const struct imap_arg *a);

/* added by fetch */
/* ---- FETCH and STORE helpers (imap_fetch_filter.c) -------------------- */

/* What a FETCH body item does to the bytes of its range of the message, a
 * chunk at a time: copy them, keep or drop header fields
 * (HEADER.FIELDS[.NOT], RFC 9051 §6.4.5), or undo a
 * Content-Transfer-Encoding (BINARY, RFC 3516 §4.2). */
enum imap_filter_kind {
	IMAP_FILTER_COPY,
	IMAP_FILTER_FIELDS,
	IMAP_FILTER_FIELDS_NOT,
	IMAP_FILTER_BASE64,
	IMAP_FILTER_QP,
};

/* Longest field name the field filter compares (RFC 5322 §2.1.1 line). */
#define IMAP_FILTER_NAME_MAX 998
/* imap_fetch_filter_run() writes at most len + IMAP_FILTER_SLACK bytes. */
#define IMAP_FILTER_SLACK 1024

struct imap_filter {
	enum imap_filter_kind kind;
	char *const *fields;	/* borrowed: the names for FIELDS[_NOT] */
	size_t nfields;
	/* Private. */
	int state;
	bool is_kept;
	uint32_t acc;
	unsigned nacc;
	size_t nbuf;
	char buf[IMAP_FILTER_NAME_MAX + 2];
};

/* Borrows fields until the filter is no longer used. */
void imap_fetch_filter_init(struct imap_filter *f,
    enum imap_filter_kind kind, char *const *fields, size_t nfields);
/* Transforms in[0..len) into out, which has room for len +
 * IMAP_FILTER_SLACK bytes. Returns the bytes written. */
size_t imap_fetch_filter_run(struct imap_filter *f, const char *in,
    size_t len, char *out);
/* Flushes what the filter held back at the end of the input (at most
 * IMAP_FILTER_SLACK bytes). Returns the bytes written. */
size_t imap_fetch_filter_end(struct imap_filter *f, char *out);
/* The filter that undoes a Content-Transfer-Encoding value (lowercase
 * token, "" when the field is absent). Returns 0, or -1 for an encoding we
 * do not know (RFC 3516 §4.2: NO [UNKNOWN-CTE]). */
int imap_fetch_filter_cte(const char *cte, enum imap_filter_kind *kind_out);
/* Finds the field name (case-insensitive) in the header block hdr and
 * copies the first token of its value (up to ";", white space or a
 * comment), lowercased, into out. Returns false when absent. */
bool imap_fetch_header_value(const char *hdr, size_t len, const char *name,
    char *out, size_t outlen);
/* Looks for the blank line that ends a header in buf, carrying *state
 * (0 before the first call) across chunks. Returns the offset just past
 * it, or SIZE_MAX when the header goes on. */
size_t imap_fetch_header_end(const char *buf, size_t len, int *state);
/* Formats ascending numbers as a sequence set ("1:3,7"). Caller frees. */
char *imap_fetch_set_format(const uint32_t *v, size_t n);

/* ---- FETCH sections (imap_fetch_section.c) ----------------------------- */

/* Bytes FETCH reads from a message file at a time. */
#define IMAP_FETCH_CHUNK (32 * 1024)

/* A message file open for FETCH. Borrows st; in and out are scratch of
 * IMAP_FETCH_CHUNK and IMAP_FETCH_CHUNK + IMAP_FILTER_SLACK bytes. */
struct imap_fetch_msg {
	int fd;
	uint64_t fd_size;	/* bytes of the file */
	uint64_t size;		/* RFC822.SIZE: BODY[] is bytes 0..size */
	const struct store_structure *st;
	char *in, *out;
};

/* What one section item sends for one message. */
struct imap_fetch_plan {
	bool is_nil;		/* no such part */
	bool is_literal8;	/* BINARY data holding NUL (RFC 3516 §4.2) */
	uint64_t start, end;	/* bytes of the file */
	enum imap_filter_kind filter;
	uint64_t total;		/* bytes of the section, filtered */
	uint64_t skip;		/* bytes before the partial window */
	uint64_t len;		/* bytes sent */
};

/* Plans sec for the message. Returns 0; -1 when the file cannot be read
 * (errno set when a read failed); -2 for a Content-Transfer-Encoding that
 * cannot be undone (BINARY). */
int imap_fetch_plan(const struct imap_fetch_msg *fm,
    const struct imap_fetch_section *sec, struct imap_fetch_plan *p_out);
/* Reads n bytes at off, retrying short reads. Returns the bytes read
 * (fewer at the end of the file), or -1 with errno set. */
ssize_t imap_fetch_read(int fd, char *buf, size_t n, uint64_t off);

/* After this session's own flag change (imap_cmd_store.c): reads back
 * from the store the flags, keywords and MODSEQ of the messages at view
 * indexes idx[k] (ascending) where pick[k], and updates the view, for
 * replies that show them; is_found_out[k] says which are still there.
 * Returns 0, or -1 (logged) when the store cannot be read. */
int imap_store_reread(struct imap_session *s, const size_t *idx, size_t n,
    const bool *pick, bool *is_found_out);


/* added by notify */
/* imap_cmd_notify.c: NOTIFY (RFC 5465). */
imap_handler imap_cmd_notify;
/* Sends what the account watch gathered for mailboxes other than the
 * selected one (STATUS, LIST); imap_done() calls it before the tagged
 * reply, IDLE at once. */
void imap_notify_flush(struct imap_session *s);
/* Whether a change to the selected mailbox is sent now, not at the end
 * of the next command: in IDLE (RFC 2177), or between commands under
 * NOTIFY SELECTED; *may_expunge_out says whether EXPUNGE may go too. */
bool imap_notify_selected_now(struct imap_session *s,
    bool *may_expunge_out);
/* After EXISTS for view->msgs[first..]: the FETCH items NOTIFY's
 * MessageNew asked for (RFC 5465 §5.2). */
void imap_notify_messages_new(struct imap_session *s, size_t first);
/* The origin the store gives this session's changes (store_origin_set),
 * so that NOTIFY leaves them out; 0 before NOTIFY. */
uint64_t imap_notify_origin(const struct imap_session *s);
/* Drops NOTIFY's state (the connection closes). */
void imap_notify_end(struct imap_session *s);

#endif
