/*
 * imap_parser: the incremental IMAP command parser (RFC 9051 §9 and RFC
 * 3501 §9), shared by the files of src/imap. It turns the bytes of a
 * connection into commands: a tag, an uppercase command name (with a flag
 * for "UID FETCH" and friends) and the arguments as a typed tree of atoms,
 * quoted strings, literals ({n}, {n+} of RFC 7888 and ~{n} of RFC 3516),
 * NIL and parenthesized lists. It knows no command's meaning: the handlers
 * read the tree, with the helpers below for numbers, strings, sequence sets
 * and FETCH sections.
 *
 * The parser never touches a socket. The session feeds it the connection's
 * input buf; it keeps an offset into that buf, and the session calls
 * imap_parser_compact() once per network read. Every length, count and
 * depth is checked before memory is taken, so that one command holds at
 * most about line_max + literal_max bytes plus its tree (args_max nodes).
 *
 * Ownership: a parser belongs to one session, and so to one worker thread.
 * Each struct imap_cmd it returns owns all its memory (one arena) and is
 * freed by imap_cmd_free(). Not thread-safe.
 *
 * A session's input loop:
 *
 *	for (;;) {
 *		rc = imap_parser_feed(&s->parser, in, &cmd, &cont);
 *		if (cont)
 *			send "+ Ready for literal data\r\n";
 *		if (rc == PARSE_MORE) {
 *			if (cont)
 *				continue;	(bytes may follow already)
 *			break;
 *		}
 *		if (rc == PARSE_ERROR) {
 *			if (s->parser.is_fatal)
 *				send "* BYE <error_text>" and close;
 *			else
 *				send "<error_tag or *> BAD <error_text>";
 *			continue;
 *		}
 *		run cmd, then imap_cmd_free(&cmd);
 *	}
 *	imap_parser_compact(&s->parser, in);
 */
#ifndef POSTERN_IMAP_PARSER_H
#define POSTERN_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/parse.h"

/* Nested parenthesized lists in one command. */
#define IMAP_PARSER_DEPTH_MAX 64
/* Literals in one command (the default of imap_parser.literals_max). */
#define IMAP_PARSER_LITERALS_MAX 64
/* Arguments in one command, lists and their elements all counted (the
 * default of imap_parser.args_max). */
#define IMAP_PARSER_ARGS_MAX 4096
/* literal_check's answer for a literal the command may not have. */
#define IMAP_LITERAL_REFUSE (-1)
/* RFC 7888 §5: the largest non-synchronizing literal under LITERAL-. */
#define IMAP_LITERAL_MINUS_MAX 4096

enum imap_arg_kind {
	IMAP_ARG_ATOM,		/* also numbers, flags ("\Seen"), sequence
				 * sets and "BODY[...]<...>" */
	IMAP_ARG_NIL,		/* the atom NIL in any case */
	IMAP_ARG_QUOTED,	/* unescaped */
	IMAP_ARG_LITERAL,	/* {n} or {n+}: never holds NUL */
	IMAP_ARG_LITERAL8,	/* ~{n} or ~{n+}: may hold NUL */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_kind kind;
	size_t len;		/* bytes of str, or elements of list */
	char *str;		/* NUL-terminated; NULL for a list. A NIL
				 * keeps its text ("nil") for astrings. */
	struct imap_arg *list;	/* IMAP_ARG_LIST: len elements */
	/* A literal spooled to a file (imap_parser.spool_open): fd holds its
	 * len bytes from offset spool_off, str is "", and the string readers
	 * below refuse it. All the spooled literals of a command share one
	 * file, one after the other, so that a MULTIAPPEND holds one
	 * descriptor whatever its number of messages. The command owns fd
	 * (imap_cmd_free closes it). When the
	 * spool could not be had or written, spool_errno says why, fd is -1
	 * and the bytes were read and dropped: the command answers NO. */
	bool is_spooled;
	int fd;
	uint64_t spool_off;
	int spool_errno;
};

struct imap_chunk;
struct imap_cmd_fd;

/* One command. Everything it points to lives in its arena. */
struct imap_cmd {
	char *tag;
	char *name;		/* uppercase; "FETCH" for "UID FETCH" */
	bool is_uid;
	struct imap_arg *args;	/* the arguments after the name */
	size_t nargs;
	size_t mem_size;	/* bytes the arena holds */
	struct imap_chunk *chunks;	/* private: the arena */
	struct imap_cmd_fd *fds;	/* private: spooled literals' files */
};

/* Frees *cmd (may be NULL) and all it holds, spooled literals' files
 * closed, and clears the pointer. */
void imap_cmd_free(struct imap_cmd **cmd);
/* Replaces *cmd, a command without arguments, by a copy of its tag and
 * name in as little memory as they take (the arena's first chunk is 1 KiB):
 * for a command that lasts, such as IDLE. Any other command stays. */
void imap_cmd_shrink(struct imap_cmd **cmd);

/* Where the parser is. Tokens never span two feeds: the parser waits for
 * the end of a line (at most line_max bytes, so bounded) before it reads
 * the tokens of that line, and only literal data is taken piecemeal. */
enum imap_parser_state {
	IMAP_PARSER_TAG,	/* waiting for the first line of a command */
	IMAP_PARSER_ARGS,	/* waiting for the line after a literal */
	IMAP_PARSER_LITERAL,	/* copying literal data */
	IMAP_PARSER_SKIP_LINE,	/* dropping the rest of a refused command */
	IMAP_PARSER_SKIP_LITERAL,	/* dropping a refused {n+}'s data */
	IMAP_PARSER_CLOSED,	/* after a fatal error */
};

struct imap_parser_level;

struct imap_parser {
	/* Limits, set by imap_parser_init(); the session may change them
	 * between commands (literal_max after authentication,
	 * literal_plus_max to IMAP_LITERAL_MINUS_MAX under LITERAL-). */
	size_t line_max;	/* non-literal bytes of one command, line
				 * ends included */
	size_t id_line_max;	/* the same for an ID command when larger
				 * (0: none); see imap_session.c */
	size_t literal_max;	/* bytes of one literal, and of all the
				 * literals of one command together */
	size_t literal_plus_max;	/* bytes of one {n+}; beyond: fatal */
	size_t literals_max;	/* literals in one command */
	size_t args_max;	/* arguments in one command */
	bool is_utf8;		/* UTF-8 allowed in quoted strings (IMAP4rev2
				 * or UTF8=ACCEPT enabled) */
	/* Spooling: a literal of at least spool_min bytes, or one that
	 * would take the command's literals in memory past spool_min, goes
	 * to the file spool_open returns instead of memory, so that one
	 * command holds about line_max + spool_min bytes of memory whatever
	 * its literals. spool_open
	 * is called when the literal is announced, before the continuation,
	 * with the command's name; it returns a file descriptor open for
	 * writing and reading (which the parser then owns), or -1: with
	 * *errno_out left 0 the literal is read into memory as usual, with
	 * an errno value the literal's bytes are dropped and its argument
	 * carries spool_errno. NULL (the default) spools nothing. */
	size_t spool_min;
	int (*spool_open)(void *arg, const char *cmd_name, int *errno_out);
	void *spool_arg;
	/* Called (with spool_arg) when any literal of n bytes is announced,
	 * before the continuation, the command's earlier literals holding
	 * total bytes: an errno value drops the literal's bytes as they come
	 * (its argument is then spooled with that spool_errno and fd -1), 0
	 * reads it as usual, IMAP_LITERAL_REFUSE refuses the command as
	 * for a literal over literal_max (BAD [TOOBIG] before the
	 * continuation; a {n+}'s bytes are read and dropped). So that a
	 * command whose arguments are small holds its bound in memory, not
	 * literal_max. NULL (the default) drops nothing. */
	int (*literal_check)(void *arg, const char *cmd_name, uint64_t n,
	    uint64_t total);

	/* Set with PARSE_ERROR; valid until the next call. */
	const char *error_text;	/* for "BAD <text>" or "BYE <text>" */
	char *error_tag;	/* NULL when no valid tag was read */
	bool is_fatal;		/* the session must say BYE and close */

	/* Private. */
	enum imap_parser_state state;
	size_t off;		/* first byte of the buf not yet consumed */
	size_t scanned;		/* bytes after off searched for a LF */
	size_t line_used;	/* non-literal bytes of this command */
	size_t nliterals;
	uint64_t literal_total;
	uint64_t literal_mem;	/* of literal_total, bytes held in memory */
	size_t nargs;
	size_t depth;
	struct imap_cmd *cmd;	/* the command being read */
	struct imap_parser_level *levels;	/* in cmd's arena */
	size_t levels_cap;
	struct imap_arg *lit_arg;	/* the literal being read */
	struct imap_chunk *lit_chunk;
	int lit_fd;		/* the file of a spooled literal, or -1 */
	int lit_spool_errno;	/* a spool failed: its bytes are dropped */
	uint64_t lit_off;	/* where the spooled literal starts */
	/* The command's spool file (in cmd->fds), shared by its spooled
	 * literals: -1 until the first; the bytes it holds; why it could
	 * not be had or written (then later literals are dropped too). */
	int spool_fd;
	uint64_t spool_len;
	int spool_errno;
	uint64_t lit_left;
	bool is_lit8;
	bool is_lit_plus;
	uint64_t skip_left;	/* bytes of a refused {n+} still to drop */
	unsigned tail;		/* recognizer of "{n}" and "{n+}" at the
				 * end of a dropped line */
	uint64_t tail_n;
	bool is_tail_plus;
	bool has_tail_digits;
	bool is_skip_plain;	/* dropping a plain line: no literals */
};

/* Fills p with the given limits (the session's line_length and, before
 * authentication, imap_literal_max_preauth) and the defaults above. The
 * buf fed later must have a cap above line_max. */
void imap_parser_init(struct imap_parser *p, size_t line_max,
    size_t literal_max);
void imap_parser_deinit(struct imap_parser *p);

/* Forgets any partial command and the buf offset, keeping the limits: for
 * STARTTLS, where the input read so far is thrown away with it. */
void imap_parser_reset(struct imap_parser *p);

/* Returns PARSE_DONE with *cmd_out set (the caller takes it) once a full
 * command, literals included, has arrived; PARSE_MORE once the buffer is
 * used up; PARSE_ERROR with p->error_text (p->error_tag if the tag was
 * read, p->is_fatal) for input that gets BAD. When a synchronizing literal
 * {n} was announced and accepted, *need_continuation_out is set and
 * PARSE_MORE returned at once, even if bytes follow: the session sends
 * "+ Ready for literal data" and calls again. After a non-fatal error the
 * parser drops the rest of that command by itself (never reading a refused
 * literal into memory) and carries on with the next one. */
enum parse_rc imap_parser_feed(struct imap_parser *p, struct buf *in,
    struct imap_cmd **cmd_out, bool *need_continuation_out);

/* For the states where the client sends plain lines (AUTHENTICATE
 * responses, IDLE's "DONE"); call only between commands. Returns
 * PARSE_DONE with the next line (borrowed from in until the next compact;
 * not NUL-terminated; CRLF or LF removed), PARSE_MORE, or PARSE_ERROR
 * (error_text set) once for a line over line_max, whose rest is dropped. */
enum parse_rc imap_parser_read_line(struct imap_parser *p, struct buf *in,
    const char **line_out, size_t *len_out);

/* Removes the bytes already consumed from in. Call once per network read,
 * after the last feed. */
void imap_parser_compact(struct imap_parser *p, struct buf *in);

/* ---- Reading arguments ------------------------------------------------ */

/* True if a is an atom "number" (RFC 9051 §9: 1*DIGIT), at most
 * 4294967295; sets *n_out. */
bool imap_arg_number(const struct imap_arg *a, uint32_t *n_out);
/* The same for "number64": at most 2^63 - 1. */
bool imap_arg_number64(const struct imap_arg *a, uint64_t *n_out);
/* True if a is an astring (atom, NIL's text, quoted or literal; not
 * literal8); sets the borrowed string. */
bool imap_arg_astring(const struct imap_arg *a, const char **str_out,
    size_t *len_out);
/* True if a is a string (quoted or literal). */
bool imap_arg_string(const struct imap_arg *a, const char **str_out,
    size_t *len_out);
/* True if a is an nstring: NIL (*str_out set to NULL) or a string. */
bool imap_arg_nstring(const struct imap_arg *a, const char **str_out,
    size_t *len_out);
/* True if a is the atom word, ignoring ASCII case. */
bool is_imap_arg_atom(const struct imap_arg *a, const char *word);

/* ---- Sequence sets (imap_parser_seqset.c) ----------------------------- */

struct imap_seq_range {
	uint32_t first, last;	/* first <= last */
};

/* A sequence set (RFC 9051 §9 sequence-set). "*" stands for a number
 * only the mailbox knows, so ranges using it are kept aside until
 * imap_seqset_resolve(): any mix of "*", "n:*" and "*:n" covers from
 * min(star_min, *) to max(star_max, *). */
struct imap_seqset {
	struct imap_seq_range *ranges;	/* sorted, disjoint, not adjacent */
	size_t n;
	bool has_star;
	uint32_t star_min;	/* UINT32_MAX for a lone "*" */
	uint32_t star_max;	/* 0 for a lone "*" */
	bool is_saved;		/* "$": the saved search result (RFC 5182) */
};

/* Parses a sequence set of at most max_items comma-separated items, such
 * as "1:*,5,7:9" or "$"; ranges are normalized ("5:1" is 1:5), sorted and
 * merged. Returns 0, or -1 (out cleared) if atom is not a sequence set.
 * out owns its ranges until imap_seqset_deinit(). */
int imap_seqset_parse(const char *atom, size_t max_items,
    struct imap_seqset *out);
/* Replaces "*" by star, the largest number in use (the last message's
 * sequence number or UID; 0 for an empty mailbox, where "*" alone covers
 * nothing), so that only plain ranges remain. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t star);
/* True if n lies in a resolved set. */
bool is_imap_seqset_member(const struct imap_seqset *set, uint32_t n);
void imap_seqset_deinit(struct imap_seqset *set);

/* ---- FETCH sections (imap_parser_section.c) --------------------------- */

#define IMAP_SECTION_PARTS_MAX 64
#define IMAP_SECTION_FIELDS_MAX 1024

enum imap_fetch_kind {
	IMAP_FETCH_BODY,
	IMAP_FETCH_BODY_PEEK,
	IMAP_FETCH_BINARY,		/* RFC 3516 */
	IMAP_FETCH_BINARY_PEEK,
	IMAP_FETCH_BINARY_SIZE,
};

enum imap_section_text {
	IMAP_SECTION_ALL,		/* the whole part, or message */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,		/* only after part numbers */
};

struct imap_fetch_section {
	enum imap_fetch_kind kind;
	uint32_t parts[IMAP_SECTION_PARTS_MAX];	/* "1.2" is { 1, 2 } */
	size_t nparts;
	enum imap_section_text text;
	char **fields;		/* HEADER.FIELDS[.NOT] names, as sent */
	size_t nfields;
	bool has_partial;	/* "<offset.count>" */
	uint64_t partial_offset;
	uint64_t partial_count;	/* >= 1 */
};

/* Parses a FETCH attribute with a section, the atom the parser built from
 * "BODY[...]", "BODY.PEEK[...]", "BINARY[...]", "BINARY.PEEK[...]" or
 * "BINARY.SIZE[...]", with an optional "<offset.count>" (RFC 9051 §6.4.5,
 * RFC 3516 §4.2). Returns 0, or -1 (out cleared) if the atom is not one.
 * out owns its fields until imap_fetch_section_deinit(). */
int imap_fetch_section_parse(const char *atom,
    struct imap_fetch_section *out);
void imap_fetch_section_deinit(struct imap_fetch_section *s);

#endif
