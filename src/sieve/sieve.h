/*
 * sieve: the Sieve mail filtering language (RFC 5228) and its extensions,
 * compiled once into a program and run on one message at a time.
 *
 * sieve_compile() lexes, parses and validates a script into a compact
 * program (one allocation block; every name resolved to a command or test
 * number, every tag checked, constant strings decoded). sieve_run() runs
 * a program on a message and its envelope and says what to do with it: a
 * list of actions (keep, fileinto, redirect, discard, reject, vacation)
 * and, when editheader changed it, the new header block. It does no I/O:
 * what it needs of the world (does a mailbox exist, was this message seen
 * before, the text of an included script) comes through callbacks.
 *
 * A run that fails (a limit, a conflict of actions, a bad regex) yields
 * the implicit keep and the reason: mail is never lost because of a
 * script (RFC 5228 §2.10.6).
 *
 * Extensions: fileinto, envelope, encoded-character, variables,
 * imap4flags, subaddress, copy, relational, body, reject, ereject,
 * mailbox, vacation, vacation-seconds, date, index, duplicate,
 * editheader, regex, spamtest, spamtestplus, virustest, include, and the
 * comparators i;octet, i;ascii-casemap, i;ascii-numeric.
 *
 * Thread-safe: a program is read-only once compiled and may be run by any
 * number of threads at once; a result belongs to its caller.
 */
#ifndef POSTERN_SIEVE_H
#define POSTERN_SIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that make a hostile script harmless. */
#define SIEVE_MAX_SCRIPT (1u << 20)	/* bytes of one script */
#define SIEVE_MAX_PROGRAM (8u << 20)	/* bytes of a compiled program */
#define SIEVE_MAX_NESTING 32		/* blocks and tests inside each other */
#define SIEVE_MAX_STEPS 200000u		/* commands, tests and match steps
					 * of one run (the CPU bound) */
#define SIEVE_MAX_REDIRECTS 4		/* redirects per message */
#define SIEVE_MAX_ACTIONS 32		/* actions per message */
#define SIEVE_MAX_REGEX 1024		/* bytes of one regular expression */
#define SIEVE_MAX_INCLUDE_DEPTH 10	/* include inside include */
#define SIEVE_MAX_INCLUDES 64		/* scripts one program takes in */
#define SIEVE_MAX_HEADER_EDITS 64	/* addheader/deleteheader per run */
#define SIEVE_MAX_VARIABLES 255		/* variables of one scope */
#define SIEVE_MAX_VARIABLE_SIZE 4096	/* bytes of one variable's value */

struct sieve_program;

/* A compile error: the line (1-based, 0 when none applies) and text such
 * as "unknown command 'filein'"; sieve_error_format() writes
 * "line 3: unknown command 'filein'". */
struct sieve_error {
	unsigned line;
	char msg[240];
};

/* Where an include (RFC 6609) looks. */
enum sieve_location {
	SIEVE_PERSONAL,
	SIEVE_GLOBAL,
};

/* What compiling needs of the world. Every member may be NULL/0. */
struct sieve_compile_opts {
	void *ctx;
	/* The text of the script name at loc, for include: returns a new
	 * buffer (caller frees) and *len_out, or NULL when there is none.
	 * Includes are resolved when compiling, so a program never reads
	 * a script at delivery. */
	char *(*include_load)(void *ctx, enum sieve_location loc,
	    const char *name, size_t *len_out);
};

/* Compiles len bytes of script. Returns a new program (free with
 * sieve_program_free), or NULL with *err filled. opts may be NULL
 * (then include of a script that is not :optional is an error). */
struct sieve_program *sieve_compile(const char *script, size_t len,
    const struct sieve_compile_opts *opts, struct sieve_error *err);
void sieve_program_free(struct sieve_program **p);
/* Bytes the program takes (for SIEVE_MAX_PROGRAM and caches). */
size_t sieve_program_size(const struct sieve_program *p);
/* Writes "line N: msg" (or msg alone) into out. */
void sieve_error_format(const struct sieve_error *err, char *out,
    size_t size);
/* The extensions this implementation knows, separated by spaces, as
 * ManageSieve's SIEVE capability lists them. */
const char *sieve_extensions(void);

/* The message and what came with it. Strings are borrowed. */
struct sieve_input {
	const char *message;	/* the raw message, CRLF or LF lines */
	size_t len;
	const char *env_from;	/* MAIL FROM, "" for the null sender */
	const char *env_to;	/* RCPT TO the script runs for */
	const char *env_orig_to;	/* ORCPT, or NULL (then env_to) */
	const char *env_auth;	/* the authenticated sender, or NULL */
	int64_t now;		/* unix seconds, for currentdate */
	int zone_minutes;	/* local zone east of UTC, for date */
	/* spamtest/virustest (RFC 5235): 0 not tested, else 1..10 as the
	 * RFC scales them; spam_percent is 0..100 for :percent, -1 when
	 * unknown. */
	int spam_score;
	int spam_percent;
	int virus_score;
};

/* What running needs of the world. Every member may be NULL. */
struct sieve_callbacks {
	void *ctx;
	/* mailboxexists (RFC 5490 §3.1). NULL: only INBOX exists. */
	bool (*mailbox_exists)(void *ctx, const char *mailbox);
	/* duplicate (RFC 7352): whether id was seen within seconds under
	 * handle. It records nothing: a SIEVE_ACT_TRACK_DUPLICATE action
	 * says what to record once the delivery is done. NULL: never a
	 * duplicate. */
	bool (*duplicate_check)(void *ctx, const char *handle,
	    const char *id, uint64_t seconds);
};

enum sieve_action_type {
	SIEVE_ACT_KEEP,		/* store: mailbox "INBOX" for keep */
	SIEVE_ACT_FILEINTO,
	SIEVE_ACT_REDIRECT,
	SIEVE_ACT_DISCARD,
	SIEVE_ACT_REJECT,
	SIEVE_ACT_EREJECT,
	SIEVE_ACT_VACATION,
	/* Record dup_id under dup_handle for dup_seconds when the message
	 * is delivered (RFC 7352 §3; with is_dup_last the time of a
	 * duplicate is refreshed too). Not a delivery: it keeps the
	 * implicit keep. */
	SIEVE_ACT_TRACK_DUPLICATE,
};

struct sieve_vacation {
	uint64_t seconds;	/* :days or :seconds, at least a day (as
				 * Pigeonhole: no reply loops) */
	char *subject;		/* NULL when not given */
	char *from;		/* NULL when not given */
	char **addresses;	/* NULL-terminated, may be empty */
	char *handle;		/* given or derived (RFC 5230 §4.2) */
	char *reason;
	bool is_mime;
};

struct sieve_action {
	enum sieve_action_type type;
	char *mailbox;		/* KEEP ("INBOX"), FILEINTO */
	char **flags;		/* KEEP/FILEINTO: NULL-terminated, NULL when
				 * no flags are to be set */
	bool is_create;		/* FILEINTO :create */
	bool is_copy;		/* REDIRECT/FILEINTO :copy */
	char *address;		/* REDIRECT */
	char *reason;		/* REJECT/EREJECT */
	struct sieve_vacation vacation;
	char *dup_handle;	/* TRACK_DUPLICATE */
	char *dup_id;
	uint64_t dup_seconds;
	bool is_dup_last;
	unsigned line;		/* where in the script */
};

/* A header edit (RFC 5293), in the order made. */
struct sieve_edit {
	bool is_delete;
	char *name;
	char *value;		/* added value; NULL for a delete */
};

struct sieve_result {
	struct sieve_action *actions;	/* explicit actions, in order */
	size_t nactions;
	/* The implicit keep holds: store in INBOX with keep_flags. */
	bool is_implicit_keep;
	char **keep_flags;	/* NULL-terminated, NULL when none */
	/* editheader: the message's header block as edited (ends with the
	 * blank line), NULL when no edit was made; the body is unchanged. */
	char *header;
	struct sieve_edit *edits;
	size_t nedits;
	/* Set when the run failed: why. The actions are then empty and
	 * is_implicit_keep is true. */
	char *error;
	unsigned error_line;
	unsigned steps;		/* what the run cost */
};

/* Runs p on in. Fills *out (free with sieve_result_deinit). Returns 0, or
 * -1 when the run failed (out->error says why; out holds the implicit
 * keep). cb may be NULL. */
int sieve_run(const struct sieve_program *p, const struct sieve_input *in,
    const struct sieve_callbacks *cb, struct sieve_result *out);
void sieve_result_deinit(struct sieve_result *r);

#endif
