/*
 * archive: the formats of `postern import` and `postern export` (issue
 * #23): mbox (mboxrd and mboxo, with the Status:, X-Status: and
 * X-Keywords: headers Dovecot and mutt read), Maildir++ as Dovecot writes
 * it (file names with flags and keyword letters, dovecot-keywords, folder
 * names), line-end conversion, and the duplicate check (Message-ID plus a
 * body hash) that makes an import safe to run twice.
 *
 * Everything but archive_dedupe_load() is a pure function or an
 * incremental parser fed bytes: nothing here opens a file or touches the
 * store, so each piece is unit-tested and fuzzed on its own. The CLI
 * (src/cli/cli_archive.c) does the files and the store. Any thread; no
 * shared state.
 */
#ifndef POSTERN_ARCHIVE_H
#define POSTERN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/parse.h"
#include "store/store.h"

/* ---- Line ends --------------------------------------------------------- */

/* Converts a stream to the store's line ends (CRLF, as SMTP DATA stores
 * them: a bare LF or a bare CR becomes CRLF) or from them to the LF of
 * files on disk (CRLF becomes LF; a bare CR stays). A CR at the end of one
 * piece waits for the next. */
struct archive_eol {
	bool is_to_lf;
	bool is_cr_pending;
};

void archive_eol_init(struct archive_eol *e, bool is_to_lf);
/* Converts n bytes of in into out, which has room for 2 * n + 1 bytes.
 * Returns the bytes written. */
size_t archive_eol_feed(struct archive_eol *e, const char *in, size_t n,
    char *out);
/* The end of the stream: writes a pending CR (at most 2 bytes). */
size_t archive_eol_finish(struct archive_eol *e, char *out);

/* ---- mbox ------------------------------------------------------------- */

/* How ">From " lines are read: mboxrd removes one '>' from every line
 * that is '>'s and "From " (the export writes mboxrd); mboxo removes it
 * only from ">From " (one '>'). */
enum archive_mbox_kind {
	ARCHIVE_MBOXRD,
	ARCHIVE_MBOXO,
};

/* Longest line the mbox reader holds whole. Longer lines (body text, a
 * header the reader does not interpret) are passed on in pieces; a
 * "From " line that long is no separator. */
#define ARCHIVE_MBOX_LINE_MAX 8192
/* Keywords kept from X-Keywords: fields, bytes. */
#define ARCHIVE_KEYWORDS_MAX 4096

/* A message's separator line: "From SENDER DATE". */
struct archive_mbox_from {
	uint64_t line;		/* 1-based line of the From line */
	uint64_t offset;	/* its byte offset in the file */
	int64_t date;		/* unix time (asctime read as UTC, or with
				 * its numeric zone) */
};

/* What the header of a message said, when it ends. */
struct archive_mbox_msg {
	uint32_t flags;		/* enum store_flag bits */
	const char *keywords;	/* space-separated, or NULL; borrowed until
				 * the callback returns */
	bool is_pseudo;		/* Dovecot's folder-data message (X-IMAP:),
				 * not mail: skip it */
};

/* What the reader calls. A callback returning -1 stops the reader
 * (archive_mbox_feed returns PARSE_ERROR with the callback's error). */
struct archive_mbox_cb {
	int (*begin)(void *arg, const struct archive_mbox_from *from);
	/* Message bytes as they were before quoting, with the file's line
	 * ends; the separator's blank line and the hidden headers
	 * (Status:, X-Status:, X-Keywords:, X-UID:, X-IMAP:, X-IMAPbase:,
	 * Content-Length:) are left out. */
	int (*data)(void *arg, const char *p, size_t n);
	int (*end)(void *arg, const struct archive_mbox_msg *msg);
};

struct archive_mbox;

/* Takes nothing; cb and arg are borrowed for the reader's life. */
struct archive_mbox *archive_mbox_new(enum archive_mbox_kind kind,
    const struct archive_mbox_cb *cb, void *arg);
void archive_mbox_free(struct archive_mbox **m);
/* Feeds n bytes, in any pieces (one byte at a time gives the same calls
 * as the whole file at once). Returns PARSE_MORE, or PARSE_ERROR (then
 * archive_mbox_error says why and where; feed no more). */
enum parse_rc archive_mbox_feed(struct archive_mbox *m, const char *data,
    size_t n);
/* The end of the file: ends the last message. Returns PARSE_DONE, or
 * PARSE_ERROR (an empty file is no error: no message). */
enum parse_rc archive_mbox_finish(struct archive_mbox *m);
/* Why the reader stopped ("not an mbox file: ..."), and the 1-based line
 * and byte offset where. */
const char *archive_mbox_error(const struct archive_mbox *m,
    uint64_t *line_out, uint64_t *offset_out);
/* Sets the error a callback reports (copied). */
void archive_mbox_set_error(struct archive_mbox *m, const char *error);

/* Parses a separator line ("From " included, line end excluded) into
 * *date_out. True when it is one: "From", a sender, then an asctime date
 * ("Www Mmm dd hh:mm[:ss] [ZONE] yyyy [+zzzz]"). */
bool is_archive_mbox_from(const char *line, size_t n, int64_t *date_out);
/* The separator line for a message: "From SENDER Www Mmm dd hh:mm:ss
 * yyyy\n" (UTC). sender NULL or unusable (spaces, control bytes, empty)
 * gives MAILER-DAEMON. Returns the length, or 0 when it does not fit. */
#define ARCHIVE_MBOX_FROM_MAX 320
size_t archive_mbox_from_format(char *out, size_t cap, const char *sender,
    int64_t date);

/* Writes one message (bytes as the store keeps them) as an mbox entry
 * after its From line: LF line ends, mboxrd quoting (one more '>' on
 * every line that is '>'s and "From "), the Status:, X-Status: and
 * X-Keywords: headers Dovecot writes added at the end of the header, and
 * the blank line that ends an entry. */
struct archive_mbox_out;

struct archive_mbox_out *archive_mbox_out_new(uint32_t flags,
    const char *keywords, int (*write)(void *arg, const char *p, size_t n),
    void *arg);
/* Returns 0, or the first -1 of write. */
int archive_mbox_out_feed(struct archive_mbox_out *o, const char *data,
    size_t n);
int archive_mbox_out_finish(struct archive_mbox_out *o);
void archive_mbox_out_free(struct archive_mbox_out **o);

/* ---- Maildir ---------------------------------------------------------- */

/* A Maildir file name "TIME.UNIQUE.HOST,S=SIZE,W=VSIZE:2,FLAGS": the
 * system flags as letters (D draft, F flagged, P passed = $Forwarded, R
 * replied, S seen, T trashed = deleted) and the folder's keywords as
 * letters a..z (dovecot-keywords). */
struct archive_maildir_info {
	int64_t time;		/* the name's leading number, or -1 */
	uint32_t flags;		/* enum store_flag bits */
	bool is_forwarded;	/* P */
	uint32_t keywords;	/* bit i: letter 'a' + i */
};

/* Reads the flags of a file name ("...:2,FLAGS"; a name without them has
 * none). Unknown letters are ignored, as Dovecot does. */
void archive_maildir_name_parse(const char *name,
    struct archive_maildir_info *info_out);
/* Writes the name of an exported message. unique and host must be plain
 * (no '/', ':', ',' or control bytes; the caller makes them). Returns the
 * length, or 0 when it does not fit. */
#define ARCHIVE_MAILDIR_NAME_MAX 256
size_t archive_maildir_name_format(char *out, size_t cap, int64_t time,
    const char *unique, const char *host, uint64_t size, uint64_t vsize,
    const struct archive_maildir_info *info);

/* A folder's dovecot-keywords: lines "N keyword", N 0..25. */
#define ARCHIVE_MAILDIR_KEYWORDS 26
#define ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX (64u << 10)
struct archive_maildir_keywords {
	char *names[ARCHIVE_MAILDIR_KEYWORDS];	/* NULL: unused letter */
};

/* Parses the file's text. Returns the number of lines that were not
 * "N keyword" with a valid N and keyword (they are skipped), and the
 * first such line in *bad_line_out (0: none). */
size_t archive_maildir_keywords_parse(struct archive_maildir_keywords *k,
    const char *text, size_t n, size_t *bad_line_out);
/* The letter of keyword (adding it when there is room), or -1 when the
 * folder already has 26 others. */
int archive_maildir_keywords_letter(struct archive_maildir_keywords *k,
    const char *keyword, size_t len);
void archive_maildir_keywords_deinit(struct archive_maildir_keywords *k);

/* Folder names. A store name ("A/B", UTF-8, '/' between levels) is the
 * Maildir++ directory ".A.B": each level in modified UTF-7 (Dovecot's
 * default on disk) with Dovecot's listescape escapes for what would
 * read otherwise: '.', '/', '\' and a leading '~' as \2e, \2f, \5c, \7e.
 * INBOX is the Maildir itself; "INBOX/x" is ".INBOX.x". Returns a new
 * string, or NULL for a name no directory can hold unambiguously (an
 * empty level, not UTF-8). The result is always one path component that
 * is neither "." nor "..". */
char *archive_folder_encode(const char *name);
/* The reverse, for a directory name starting with '.'. Returns a new
 * store name, or NULL when the directory is not a folder ("." and "..",
 * an empty level, bad escapes or modified UTF-7, control bytes). */
char *archive_folder_decode(const char *dir);

/* ---- Duplicates ------------------------------------------------------- */

/* What makes two messages the same for an import: the SHA-256 of the
 * whole message, header and body, as the store holds it. Line ends do
 * not count (CRLF and LF hash alike), nor do the header fields an mbox
 * import turns into flags and export writes back (Status:, X-Status:,
 * X-Keywords:, X-UID:, X-IMAP:, X-IMAPbase:, Content-Length:), nor a
 * missing final line end or header-ending blank line; so a message read
 * back from a Maildir or an mbox file matches its stored copy, and any
 * other difference (a Subject, a From) makes another message. */
#define ARCHIVE_KEY_LEN 32
struct archive_key {
	unsigned char d[ARCHIVE_KEY_LEN];
};

/* Built incrementally over a message's bytes. */
struct archive_key_builder;

struct archive_key_builder *archive_key_builder_new(void);
void archive_key_builder_feed(struct archive_key_builder *b,
    const char *data, size_t n);
/* Writes the key and frees *b. */
void archive_key_builder_final(struct archive_key_builder **b,
    struct archive_key *key_out);
/* At once. */
void archive_key_of(const char *data, size_t n, struct archive_key *key_out);

/* A multiset of keys: a mailbox's messages. An import skips a message
 * when the mailbox holds a copy not yet matched, so that the n-th copy of
 * a message in the source matches the n-th copy in the mailbox: running
 * the import again adds nothing, and a source that holds a message twice
 * still gets both copies the first time. */
struct archive_dedupe;

struct archive_dedupe *archive_dedupe_new(void);
void archive_dedupe_free(struct archive_dedupe **d);
void archive_dedupe_add(struct archive_dedupe *d,
    const struct archive_key *key);
/* True (and one copy is used up) when d holds key. */
bool archive_dedupe_take(struct archive_dedupe *d,
    const struct archive_key *key);
/* Adds the key of every message of mailbox, reading their bodies.
 * Returns 0, or -1 with *err_out set. A message expunged meanwhile is
 * skipped. */
int archive_dedupe_load(struct archive_dedupe *d, struct store *st,
    int64_t mailbox, enum store_err *err_out);

#endif
