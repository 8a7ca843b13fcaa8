/*
 * sieve_int.h: what the files of src/sieve share: the compiled program
 * (a tree of nodes in one arena), the match functions and the message
 * access of a run.
 */
#ifndef POSTERN_SIEVE_INT_H
#define POSTERN_SIEVE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sieve/sieve.h"

/* ---- Arena ------------------------------------------------------------- */

struct sv_chunk;
struct sv_arena {
	struct sv_chunk *head;
	size_t used;		/* bytes handed out, for the size limits */
};
void *sv_alloc(struct sv_arena *a, size_t n);
char *sv_strndup(struct sv_arena *a, const char *s, size_t n);
void sv_arena_free(struct sv_arena *a);

/* ---- Program ----------------------------------------------------------- */

enum sv_ext {
	EXT_FILEINTO, EXT_ENVELOPE, EXT_ENCODED_CHARACTER, EXT_VARIABLES,
	EXT_IMAP4FLAGS, EXT_SUBADDRESS, EXT_COPY, EXT_RELATIONAL, EXT_BODY,
	EXT_REJECT, EXT_EREJECT, EXT_MAILBOX, EXT_VACATION,
	EXT_VACATION_SECONDS, EXT_DATE, EXT_INDEX, EXT_DUPLICATE,
	EXT_EDITHEADER, EXT_REGEX, EXT_SPAMTEST, EXT_SPAMTESTPLUS,
	EXT_VIRUSTEST, EXT_INCLUDE, EXT_CMP_NUMERIC, EXT_COUNT
};

enum sv_id {
	/* commands */
	C_REQUIRE, C_IF, C_ELSIF, C_ELSE, C_STOP, C_KEEP, C_DISCARD,
	C_REDIRECT, C_FILEINTO, C_SET, C_SETFLAG, C_ADDFLAG, C_REMOVEFLAG,
	C_REJECT, C_EREJECT, C_VACATION, C_ADDHEADER, C_DELETEHEADER,
	C_INCLUDE, C_RETURN, C_GLOBAL,
	/* tests */
	T_ADDRESS, T_HEADER, T_ENVELOPE, T_EXISTS, T_SIZE, T_ALLOF, T_ANYOF,
	T_NOT, T_TRUE, T_FALSE, T_STRING, T_HASFLAG, T_BODY, T_DATE,
	T_CURRENTDATE, T_DUPLICATE, T_MAILBOXEXISTS, T_SPAMTEST,
	T_VIRUSTEST,
};

enum sv_tag {
	G_NONE, G_IS, G_CONTAINS, G_MATCHES, G_REGEX, G_COUNT, G_VALUE,
	G_COMPARATOR, G_ALL, G_LOCALPART, G_DOMAIN, G_USER, G_DETAIL,
	G_OVER, G_UNDER, G_COPY, G_FLAGS, G_CREATE, G_DAYS, G_SECONDS,
	G_SUBJECT, G_FROM, G_ADDRESSES, G_MIME, G_HANDLE, G_RAW, G_CONTENT,
	G_TEXT, G_ZONE, G_ORIGINALZONE, G_INDEX, G_LAST, G_HEADER,
	G_UNIQUEID, G_LOWER, G_UPPER, G_LOWERFIRST, G_UPPERFIRST,
	G_QUOTEWILDCARD, G_QUOTEREGEX, G_LENGTH, G_PERCENT, G_PERSONAL,
	G_GLOBAL, G_ONCE, G_OPTIONAL,
	G_NTAGS
};

enum sv_cmp { CMP_OCTET, CMP_CASEMAP, CMP_NUMERIC };
enum sv_rel { REL_NONE, REL_GT, REL_GE, REL_LT, REL_LE, REL_EQ, REL_NE };

/* A string of the script: decoded escapes and encoded characters; has_var
 * when it holds "${" and variables is in force (expanded at run time). */
struct sv_str {
	char *s;
	size_t len;
	bool has_var;
	void *re;		/* a constant :regex key: its compiled regex_t,
				 * made once by the compiler */
};
struct sv_list {
	struct sv_str *v;
	size_t n;
};

struct sv_node {
	uint16_t id;
	uint16_t match;		/* G_IS, G_CONTAINS, G_MATCHES, G_REGEX,
				 * G_COUNT, G_VALUE */
	uint8_t cmp;		/* enum sv_cmp */
	uint8_t rel;		/* enum sv_rel for :count/:value */
	uint8_t part;		/* G_ALL, G_LOCALPART, G_DOMAIN, G_USER,
				 * G_DETAIL */
	unsigned line;
	uint64_t tagmask;	/* 1 << G_* for each tag given */
	struct sv_list tagval[8];	/* values of tags, by slot below */
	uint64_t num;		/* :days/:seconds/:index/:over/size */
	struct sv_list pos[3];	/* positional string arguments */
	uint8_t npos;
	struct sv_node *kids;	/* tests of allof/anyof/not/if */
	size_t nkids;
	struct sv_node *block;	/* commands of a block */
	size_t nblock;
	struct sv_script *inc;	/* include: the script taken in */
};

/* Slots of sv_node.tagval. */
enum {
	V_COMPARATOR, V_RELOP, V_FLAGS, V_SUBJECT, V_FROM, V_ADDRESSES,
	V_HANDLE, V_CONTENT,
};
/* More slots, used by commands that take no conflicting tags. */
#define V_ZONE V_SUBJECT
#define V_HEADER V_SUBJECT
#define V_UNIQUEID V_FROM

struct sv_script {
	struct sv_node *cmds;
	size_t ncmds;
	uint64_t exts;		/* 1 << EXT_* required */
	bool is_once;		/* included :once */
	unsigned index;		/* among the program's scripts */
};

struct sieve_program {
	struct sv_arena arena;
	void **regexes;		/* regex_t of constant :regex keys */
	size_t nregexes;
	struct sv_script *main;
	size_t nscripts;
};

static inline bool
sv_has(const struct sv_node *n, enum sv_tag t)
{
	return (n->tagmask & (1ull << t)) != 0;
}

/* ---- Matching (sieve_match.c) ------------------------------------------ */

#define SV_MAX_CAPTURES 10

struct sv_run;
/* Compares value against key by the node's comparator and match type
 * (:is, :contains, :matches, :regex, :value). With caps non-NULL and a
 * :matches or :regex match, fills caps[0..9] with new strings (caller
 * frees). Counts steps into *steps. Returns 1 match, 0 not, -1 error
 * (regex that does not compile; *err set). */
int sv_match(const struct sv_node *n, const char *value, size_t vlen,
    const char *key, size_t klen, const void *re, char **caps,
    unsigned *steps, const char **err);
/* Compares a and b by comparator: <0, 0, >0 (i;ascii-numeric per RFC
 * 4790 §9.1.1: a string not starting with a digit is positive infinity). */
int sv_compare(enum sv_cmp cmp, const char *a, size_t alen, const char *b,
    size_t blen);
bool sv_rel_holds(enum sv_rel rel, int c);
/* Compiles a :regex key (POSIX ERE) into a new regex_t (free with
 * sv_regex_free), or returns NULL with *why_out set. */
void *sv_regex_compile(const char *re, bool icase, const char **why_out);
void sv_regex_free(void *re);

/* ---- Run (sieve_run.c) ------------------------------------------------- */

/* An addr-spec redirect takes (local@domain, no spaces or brackets). */
bool sieve_is_address_valid(const char *s);
/* An RFC 5322 field name (printable ASCII but ':'). */
bool sv_is_field_name(const char *s);

/* ---- Message (sieve_msg.c) --------------------------------------------- */

struct sv_field {
	char *name;		/* as written */
	char *raw;		/* the value as written (folded) */
};

struct sv_msg {
	const char *data;
	size_t len;
	size_t body_off;	/* first byte of the body */
	struct sv_field *f;
	size_t nf;
	bool is_edited;
};

void sv_msg_init(struct sv_msg *m, const char *data, size_t len);
void sv_msg_deinit(struct sv_msg *m);
/* The unfolded, trimmed value of a field, RFC 2047 decoded when decode
 * (new string). */
char *sv_field_value(const struct sv_field *f, bool decode);

/* One address of an address list: local part and domain (new strings,
 * domain NULL for a local part alone); all is the addr-spec. */
struct sv_addr {
	char *all, *local, *domain;
};
/* Parses an address-list value into *out (n addresses; free with
 * sv_addrs_free). Returns the count; a value with none gives 0. */
size_t sv_addrs_parse(const char *v, struct sv_addr **out);
void sv_addrs_free(struct sv_addr *a, size_t n);

/* A date parsed from RFC 5322 text: the broken-down UTC time plus zone. */
struct sv_date {
	int64_t t;		/* unix seconds, UTC */
	int zone;		/* minutes east of UTC */
};
bool sv_date_parse(const char *s, struct sv_date *out);
/* Writes date part name of t shown in zone (minutes) to out. Returns
 * false when part is unknown. */
bool sv_date_part(int64_t t, int zone, const char *part, char *out,
    size_t size);
bool sv_is_date_part(const char *part);
bool sv_zone_parse(const char *s, int *zone_out);

/* Body parts for the body test: each a new string of the part's content
 * (decoded to UTF-8 when is_decode). types NULL: every text part (:text);
 * else the content types to take (RFC 5173 §5.2). */
struct sv_body {
	char **parts;
	size_t n;
};
void sv_body_extract(const char *data, size_t len, bool is_raw,
    const struct sv_list *types, struct sv_body *out);
void sv_body_free(struct sv_body *b);

#endif
