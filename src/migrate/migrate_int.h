/*
 * migrate_int: what the files of src/migrate share: the IMAP response
 * parser (pure: fed bytes, no socket, fuzzed by fuzz/fuzz_imap_response.c),
 * the readers of its values (FETCH, LIST, VANISHED, status codes), the
 * modified UTF-7 decoder of source folder names, and the blocking line
 * connection the IMAP and POP3 clients share. Everything here runs on the
 * thread of one migration (postern migrate runs one per account).
 */
#ifndef POSTERN_MIGRATE_INT_H
#define POSTERN_MIGRATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "lib/buf.h"
#include "lib/parse.h"
#include "migrate/migrate.h"
#include "store/store.h"

/* Bytes of the keywords of one message we keep (space-separated). */
#define MIGRATE_KEYWORDS_MAX 4096
/* What a hostile source can make us hold (security review, M1): folders
 * from LIST; messages of one folder listed by UID FETCH 1:* (at most the
 * folder's EXISTS plus a slack, never over the absolute cap); the keyword
 * bytes of one folder's listing; POP3 UIDL lines. */
#define MIGRATE_FOLDERS_MAX 100000u
#define MIGRATE_MESSAGES_MAX 10000000u
#define MIGRATE_MESSAGES_SLACK 1000u
#define MIGRATE_FOLDER_KEYWORD_BYTES_MAX (64u << 20)
#define MIGRATE_POP3_MESSAGES_MAX 1000000u
/* Deepest nesting of parenthesised lists in one response. */
#define MIGRATE_DEPTH_MAX 16

/* One value of a response: an atom (flags, numbers, BODY[] names), a
 * string (quoted or literal; bytes borrowed from the input buf), NIL, or a
 * list whose items are kids[0..n). */
enum migrate_val_kind {
	MIGRATE_VAL_ATOM,
	MIGRATE_VAL_STRING,
	MIGRATE_VAL_NIL,
	MIGRATE_VAL_LIST,
};

struct migrate_val {
	enum migrate_val_kind kind;
	const char *s;		/* atom or string bytes (not NUL-terminated
				 * for a literal; quoted strings are
				 * unescaped in place) */
	size_t len;
	struct migrate_val *kid;	/* first item of a list */
	struct migrate_val *next;	/* next item of the enclosing list */
	size_t n;		/* items of a list */
};

enum migrate_resp_kind {
	MIGRATE_RESP_UNTAGGED,	/* "* ..." */
	MIGRATE_RESP_TAGGED,	/* "A1 OK ..." */
	MIGRATE_RESP_CONTINUE,	/* "+ ..." */
};

/* Status of a tagged or untagged OK/NO/BAD/BYE/PREAUTH. */
enum migrate_status {
	MIGRATE_STATUS_NONE,	/* not a status response (FETCH, LIST, ...) */
	MIGRATE_STATUS_OK,
	MIGRATE_STATUS_NO,
	MIGRATE_STATUS_BAD,
	MIGRATE_STATUS_BYE,
	MIGRATE_STATUS_PREAUTH,
};

/* One whole response, valid until migrate_parser_consume(). */
struct migrate_resp {
	enum migrate_resp_kind kind;
	const char *tag;	/* tagged: the tag, NUL-terminated */
	enum migrate_status status;
	/* Status responses: the response code between [ ] (NUL-terminated
	 * name, upper-cased, "" when none) and its arguments as raw text,
	 * and the human text after it (both NUL-terminated). */
	const char *code;
	const char *code_args;
	const char *text;
	/* Other responses: their values after the tag; a leading number
	 * ("* 3 FETCH") is the first item. */
	struct migrate_val *items;
	size_t n;
};

/* The incremental response parser. It first finds where a response ends
 * (its line, and each literal announced at a line's end with the line
 * after it) without allocating, checking every literal size against
 * literal_max and every line against line_max before a byte of it is held;
 * then it parses the complete response in place. */
struct migrate_parser {
	size_t line_max;	/* longest line (without literals) */
	size_t literal_max;	/* longest literal */
	/* Scanning state, kept across feeds. */
	size_t off;		/* bytes of the buf scanned so far */
	size_t line_start;	/* where the current line began */
	size_t literal_left;	/* bytes of a literal still to come */
	size_t text_bytes;	/* bytes outside literals so far */
	bool is_quoted, is_escaped;
	/* The parsed response, and its storage. */
	size_t end;		/* bytes of the buf the response takes */
	struct migrate_val *vals;
	size_t nvals, vals_cap;
	char *work;		/* NUL-terminated copies of tag, code, text */
	const char *error;	/* why PARSE_ERROR, static */
};

void migrate_parser_init(struct migrate_parser *p, size_t line_max,
    size_t literal_max);
void migrate_parser_deinit(struct migrate_parser *p);
/* Returns PARSE_DONE with *r_out filled once the buf holds a whole
 * response (borrowing the buf: call migrate_parser_consume() before
 * feeding again), PARSE_MORE when it does not yet, PARSE_ERROR (p->error
 * says why) when the input breaks a limit or the grammar; the connection
 * is then beyond repair. */
enum parse_rc migrate_parser_feed(struct migrate_parser *p, struct buf *in,
    struct migrate_resp *r_out);
/* Drops the response just returned from the buf. */
void migrate_parser_consume(struct migrate_parser *p, struct buf *in);

/* ---- Readers of values (all bounded, none allocates from a number) ---- */

/* Whether v is the atom word (case-insensitive). */
bool is_migrate_val_atom(const struct migrate_val *v, const char *word);
/* Decimal numbers: false for anything else, overflow included. */
bool migrate_val_u32(const struct migrate_val *v, uint32_t *n_out);
bool migrate_val_u64(const struct migrate_val *v, uint64_t *n_out);
bool migrate_text_u64(const char *s, size_t len, uint64_t *n_out);

/* What one "* n FETCH (...)" says. */
struct migrate_fetch {
	uint32_t seq;
	uint32_t uid;		/* 0: not given */
	bool has_flags;
	uint32_t flags;		/* enum store_flag bits */
	char keywords[MIGRATE_KEYWORDS_MAX];	/* space-separated */
	bool has_date;
	int64_t internal_date;
	bool has_size;
	uint64_t size;
	uint64_t modseq;	/* 0: not given */
	const char *body;	/* BODY[] bytes, or NULL */
	size_t body_len;
};

/* Reads a FETCH response. Returns 0, or -1 when r is not one or breaks
 * the grammar (a bad number, a flag that is not an atom). Keywords that
 * do not fit keywords[] are dropped (*is_truncated_out). */
int migrate_fetch_read(const struct migrate_resp *r,
    struct migrate_fetch *f_out, bool *is_truncated_out);

/* What one "* LIST (attrs) delim name" says. name is the source's raw
 * name (borrowed), delim 0 when NIL. */
enum migrate_list_attr {
	MIGRATE_LIST_NOSELECT = 1 << 0,
	MIGRATE_LIST_SENT = 1 << 1,
	MIGRATE_LIST_DRAFTS = 1 << 2,
	MIGRATE_LIST_TRASH = 1 << 3,
	MIGRATE_LIST_JUNK = 1 << 4,
	MIGRATE_LIST_ARCHIVE = 1 << 5,
};
struct migrate_list {
	uint32_t attrs;
	char delim;
	const char *name;
	size_t name_len;
};
int migrate_list_read(const struct migrate_resp *r,
    struct migrate_list *l_out);

/* A UID set as ranges ("1:5,9"), for VANISHED: calls cb for each range
 * lo <= hi (a set is never expanded into memory). Returns 0, or -1 for a
 * malformed set (cb may have run for ranges before the fault). */
int migrate_uidset_read(const char *s, size_t len,
    void (*cb)(void *arg, uint32_t lo, uint32_t hi), void *arg);
/* "* VANISHED [(EARLIER)] set": the set's atom, or NULL if r is not one. */
const struct migrate_val *migrate_vanished_set(const struct migrate_resp *r);

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051 date-time) to unix time. */
bool migrate_date_time_parse(const char *s, size_t len, int64_t *t_out);
/* An RFC 5322 Date: field body ("Mon, 2 Jan 2006 15:04:05 -0700", day
 * name and seconds optional) to unix time. */
bool migrate_rfc5322_date_parse(const char *s, size_t len, int64_t *t_out);

/* ---- The connection (migrate_conn.c) ---------------------------------- */

/* Longest line of a source (POP3 lines, IMAP lines without literals). */
#define MIGRATE_LINE_MAX (64u << 10)

struct net_tls_stream;

/* A blocking connection to the source: a socket with read and write
 * timeouts, TLS from the start or after STARTTLS/STLS. */
struct migrate_conn {
	int fd;
	struct net_tls_stream *tls;
	struct buf in;		/* capped: line or literal limits + slack */
	const char *host;	/* borrowed */
	char *error;		/* what went wrong last, or NULL */
	/* The answer to each command (and the greeting) must come within
	 * timeout_secs plus a second for every MIGRATE_MIN_RATE bytes of
	 * it: a source trickling a byte a minute cannot hold a job. */
	int timeout_secs;
	struct timespec start;	/* of this answer: the last write */
	uint64_t got;		/* bytes read since */
};
#define MIGRATE_MIN_RATE (16u << 10)

/* Connects to host:port (every address getaddrinfo gives, in order) with
 * timeout_secs for the connection and each read and write later. Returns
 * 0, or -1 with err set. */
int migrate_conn_open(struct migrate_conn *c, const char *host,
    uint16_t port, int timeout_secs, size_t in_cap, char *err,
    size_t errlen);
/* TLS over the connection (now, or after STARTTLS); throws away what was
 * read before (RFC 3207 §4.2, RFC 2595 §3.1). */
int migrate_conn_tls(struct migrate_conn *c, const char *ca_file,
    bool is_insecure, char *err, size_t errlen);
/* Reads once more into c->in. Returns bytes read, 0 at the peer's close,
 * -1 on an error, a timeout or when c->in is full. */
ssize_t migrate_conn_read(struct migrate_conn *c);
int migrate_conn_write(struct migrate_conn *c, const void *data,
    size_t len);
void migrate_conn_close(struct migrate_conn *c);

/* ---- What IMAP and POP3 share (migrate_copy.c) ------------------------- */

/* Our name for a source folder: the source's levels (split at delim)
 * joined with "/", each level made one the store takes ("." and ".." and
 * a leading "~" get a "_" in front, control characters and "/" become
 * "_", an empty level is "_"); INBOX in any case is INBOX; a special-use
 * folder becomes ours of that use. A new string; *is_mapped_out says
 * whether a level had to change. */
char *migrate_name_map(const char *utf8, char delim, uint32_t attrs,
    bool *is_mapped_out);

/* The body of the first Message-ID field of the header (unfolded,
 * trimmed, at most 998 bytes), a new string, or NULL. */
char *migrate_message_id(const char *msg, size_t len);
/* Hex SHA-256 of the bytes into out (65 bytes). */
void migrate_hash(const char *msg, size_t len, char out[65]);

/* Stores messages without waiting for each commit: up to
 * MIGRATE_PIPELINE deliveries (and MIGRATE_PIPELINE_BYTES of them) in
 * flight, so that the store's writer commits a full batch with one sync
 * (DESIGN.md, group commit; a batch is at most 256). */
#define MIGRATE_PIPELINE 256
#define MIGRATE_PIPELINE_BYTES (32u << 20)

struct event_base;

struct migrate_sink {
	struct store *st;
	int64_t account;
	struct event_base *base;
	size_t inflight;
	uint64_t inflight_bytes;
	bool is_store_failed;
	char store_error[160];
};

int migrate_sink_init(struct migrate_sink *k, struct store *st,
    int64_t account);
void migrate_sink_deinit(struct migrate_sink *k);
/* Queues the message for mailbox with its map entry (key, source flags);
 * counts the result into fr once durable (copied and bytes, or failed).
 * Returns 0, or -1 when the store is closing. */
int migrate_sink_put(struct migrate_sink *k, struct migrate_folder_result *fr,
    const char *source, const char *folder, const char *mailbox,
    const char *msg, size_t len, uint32_t flags, const char *keywords,
    int64_t internal_date, const struct store_migrate_entry *e);
/* Waits until every queued message is durable or failed. */
void migrate_sink_drain(struct migrate_sink *k);

/* The protocols' runs (migrate_imap.c, migrate_pop3.c): over an open,
 * logged-in-to-be connection; fill r. */
int migrate_imap_run(struct migrate_conn *c, struct store *st,
    int64_t account, const struct migrate_options *o, const char *source,
    struct migrate_result *r);
int migrate_pop3_run(struct migrate_conn *c, struct store *st,
    int64_t account, const struct migrate_options *o, const char *source,
    struct migrate_result *r);

#endif
