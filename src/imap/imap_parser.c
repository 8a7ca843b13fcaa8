/*
 * imap_parser: reads IMAP commands out of a session's input buf. A command
 * arrives as lines: the first holds the tag and the name, and each line
 * that ends with a literal announcement ("{n}", "{n+}", "~{n}") is followed
 * by the literal's bytes and then by another line. The parser waits for a
 * whole line (at most line_max bytes over the command) and reads its tokens
 * at once, so a token never spans two feeds; literal data is copied as it
 * comes, into memory taken only after the size was checked, or, for a
 * literal of at least spool_min bytes, into a file (APPEND of a large
 * message holds a few kilobytes of memory, not the message).
 */
#include "imap/imap_parser.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/util.h"

/* ---- The command's arena ---------------------------------------------- */

struct imap_chunk {
	struct imap_chunk *next;
	size_t size;		/* bytes of data */
	size_t used;
};

/* The sizes below may be set smaller at build time, as the fuzz harness
 * does to reach every path with short inputs. */
#ifndef IMAP_PARSER_CHUNK_FIRST
#define IMAP_PARSER_CHUNK_FIRST 1024
#endif
#ifndef IMAP_PARSER_CHUNK_GROW_MAX
#define IMAP_PARSER_CHUNK_GROW_MAX (64 * 1024)
#endif
#ifndef IMAP_PARSER_LITERAL_FIRST
#define IMAP_PARSER_LITERAL_FIRST (16 * 1024)
#endif

/* Input buffer an idle session keeps (imap_parser_compact). */
#define IMAP_PARSER_BUF_KEEP 1024

#define CHUNK_ALIGN alignof(max_align_t)
#define CHUNK_HDR \
	((sizeof(struct imap_chunk) + CHUNK_ALIGN - 1) & ~(CHUNK_ALIGN - 1))
/* The first chunk holds the struct imap_cmd and the first tokens. */
#define CHUNK_FIRST IMAP_PARSER_CHUNK_FIRST
/* Chunks double up to this size; bigger pieces get their own. */
#define CHUNK_GROW_MAX IMAP_PARSER_CHUNK_GROW_MAX
/* Chunks up to this size are wiped when freed: a command may carry a
 * password (LOGIN), and wiping a 50 MB APPEND would cost more than the
 * secrecy of a message that is about to be stored anyway. */
#define CHUNK_WIPE_MAX (64 * 1024)
/* A literal's memory starts at this size and doubles as its bytes arrive,
 * so that an announced but unsent literal holds little. */
#define LITERAL_FIRST IMAP_PARSER_LITERAL_FIRST

_Static_assert(CHUNK_FIRST >= sizeof(struct imap_cmd),
    "the first chunk holds the command");

static char *
chunk_data(struct imap_chunk *c)
{
	return (char *)c + CHUNK_HDR;
}

static struct imap_chunk *
chunk_new(size_t size)
{
	struct imap_chunk *c = xmalloc(CHUNK_HDR + size);

	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

static void
chunk_free(struct imap_chunk *c)
{
	if (c->size <= CHUNK_WIPE_MAX)
		secret_wipe(c, CHUNK_HDR + c->size);
	free(c);
}

static struct imap_cmd *
cmd_new(void)
{
	struct imap_chunk *c = chunk_new(CHUNK_FIRST);
	struct imap_cmd *cmd = (struct imap_cmd *)chunk_data(c);

	memset(cmd, 0, sizeof(*cmd));
	c->used = sizeof(*cmd);
	cmd->chunks = c;
	cmd->mem_size = CHUNK_HDR + c->size;
	return cmd;
}

/* Takes n bytes aligned to align (a power of two, at most CHUNK_ALIGN). */
static void *
cmd_alloc(struct imap_cmd *cmd, size_t n, size_t align)
{
	struct imap_chunk *c = cmd->chunks;
	size_t at = (c->used + align - 1) & ~(align - 1);

	if (at <= c->size && n <= c->size - at) {
		c->used = at + n;
		return chunk_data(c) + at;
	}
	if (n >= CHUNK_GROW_MAX / 2) {
		/* A big piece gets a chunk of its own behind the current one,
		 * which keeps serving small pieces. */
		struct imap_chunk *big = chunk_new(n);

		big->used = n;
		big->next = c->next;
		c->next = big;
		cmd->mem_size += CHUNK_HDR + n;
		return chunk_data(big);
	}
	size_t size = c->size * 2 < CHUNK_GROW_MAX ? c->size * 2 :
	    CHUNK_GROW_MAX;

	if (size < n)
		size = n;
	c = chunk_new(size);
	c->next = cmd->chunks;
	cmd->chunks = c;
	cmd->mem_size += CHUNK_HDR + size;
	c->used = n;
	return chunk_data(c);
}

static char *
cmd_strndup(struct imap_cmd *cmd, const char *s, size_t n)
{
	char *d = cmd_alloc(cmd, n + 1, 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* A spooled literal's file, listed in the command's arena. */
struct imap_cmd_fd {
	int fd;
	struct imap_cmd_fd *next;
};

void
imap_cmd_free(struct imap_cmd **cmdp)
{
	struct imap_cmd *cmd = *cmdp;
	struct imap_chunk *c, *next;

	if (cmd == NULL)
		return;
	*cmdp = NULL;
	for (struct imap_cmd_fd *f = cmd->fds; f != NULL; f = f->next)
		close(f->fd);
	/* cmd itself lives in the last chunk of the list. */
	for (c = cmd->chunks; c != NULL; c = next) {
		next = c->next;
		chunk_free(c);
	}
}

void
imap_cmd_shrink(struct imap_cmd **cmdp)
{
	struct imap_cmd *old = *cmdp, *cmd;
	size_t tlen, nlen;
	struct imap_chunk *c;
	char *p;

	if (old == NULL || old->fds != NULL || old->nargs != 0)
		return;
	tlen = strlen(old->tag) + 1;
	nlen = strlen(old->name) + 1;
	c = chunk_new(sizeof(*cmd) + tlen + nlen);
	cmd = (struct imap_cmd *)chunk_data(c);
	memset(cmd, 0, sizeof(*cmd));
	p = (char *)(cmd + 1);
	cmd->tag = memcpy(p, old->tag, tlen);
	cmd->name = memcpy(p + tlen, old->name, nlen);
	cmd->is_uid = old->is_uid;
	cmd->args = NULL;
	cmd->chunks = c;
	c->used = c->size;
	cmd->mem_size = CHUNK_HDR + c->size;
	imap_cmd_free(cmdp);
	*cmdp = cmd;
}

/* ---- Building the tree ------------------------------------------------ */

/* While a list is open its elements are a linked list; when it closes they
 * become the array the handlers index. */
struct imap_arg_link {
	struct imap_arg arg;
	struct imap_arg_link *next;
};

struct imap_parser_level {
	struct imap_arg_link *first, *last;
	size_t n;
	struct imap_arg *owner;	/* the list they go to; NULL at the top */
};

#define LEVELS_FIRST 4

static const char TEXT_TOOBIG_LITERAL[] = "[TOOBIG] Literal too large";
static const char TEXT_LITERAL_NUL[] = "NUL byte in a literal (only "
    "literal8 may hold one)";

/* Forgets the command's spool file. The file itself is in cmd->fds from
 * the moment it is opened, so imap_cmd_free() closes it (it has no name,
 * store_spool_open, so closing it frees it); closing it here too would
 * close it twice. */
static void
spool_close(struct imap_parser *p)
{
	p->lit_fd = -1;
	p->lit_spool_errno = 0;
	p->lit_off = 0;
	p->spool_fd = -1;
	p->spool_len = 0;
	p->spool_errno = 0;
}

/* The command's spool file for the literal being announced: opened for
 * the first spooled literal and listed in cmd->fds at once, shared by the others
 * (one descriptor per command, not per literal: a MULTIAPPEND of 50
 * messages of 1 MiB held 50 until its last literal came). */
static void
spool_begin(struct imap_parser *p)
{
	if (p->spool_fd < 0 && p->spool_errno == 0) {
		int errnum = 0;
		int fd = p->spool_open(p->spool_arg, p->cmd->name, &errnum);

		if (fd >= 0) {
			struct imap_cmd_fd *f = cmd_alloc(p->cmd, sizeof(*f),
			    alignof(struct imap_cmd_fd));

			f->fd = fd;
			f->next = p->cmd->fds;
			p->cmd->fds = f;
			p->spool_fd = fd;
		} else {
			/* 0: not a command whose literals are spooled
			 * (they stay in memory). */
			p->spool_errno = errnum;
		}
	}
	p->lit_spool_errno = p->spool_errno;
	p->lit_fd = p->spool_errno == 0 ? p->spool_fd : -1;
	p->lit_off = p->spool_len;
}
static const char TEXT_TOOBIG_LINE[] = "[TOOBIG] Command line too long";

static void
levels_start(struct imap_parser *p)
{
	p->levels = cmd_alloc(p->cmd, LEVELS_FIRST * sizeof(*p->levels),
	    alignof(struct imap_parser_level));
	p->levels_cap = LEVELS_FIRST;
	p->depth = 0;
	memset(&p->levels[0], 0, sizeof(p->levels[0]));
}

/* Returns a new argument of the current list, or NULL with error_text. */
static struct imap_arg *
arg_add(struct imap_parser *p, enum imap_arg_kind kind)
{
	struct imap_parser_level *lv = &p->levels[p->depth];
	struct imap_arg_link *l;

	if (p->nargs >= p->args_max) {
		p->error_text = "[LIMIT] Too many arguments";
		return NULL;
	}
	l = cmd_alloc(p->cmd, sizeof(*l), alignof(struct imap_arg_link));
	memset(l, 0, sizeof(*l));
	l->arg.kind = kind;
	if (lv->last != NULL)
		lv->last->next = l;
	else
		lv->first = l;
	lv->last = l;
	lv->n++;
	p->nargs++;
	return &l->arg;
}

static struct imap_arg *
level_array(struct imap_parser *p, const struct imap_parser_level *lv)
{
	struct imap_arg *a;
	const struct imap_arg_link *l;
	size_t i = 0;

	if (lv->n == 0)
		return NULL;
	a = cmd_alloc(p->cmd, lv->n * sizeof(*a), alignof(struct imap_arg));
	for (l = lv->first; l != NULL; l = l->next)
		a[i++] = l->arg;
	return a;
}

static int
list_open(struct imap_parser *p)
{
	struct imap_arg *owner;

	if (p->depth >= IMAP_PARSER_DEPTH_MAX) {
		p->error_text = "[LIMIT] Lists nested too deeply";
		return -1;
	}
	owner = arg_add(p, IMAP_ARG_LIST);
	if (owner == NULL)
		return -1;
	if (p->depth + 1 >= p->levels_cap) {
		size_t cap = p->levels_cap * 2;
		struct imap_parser_level *lv = cmd_alloc(p->cmd,
		    cap * sizeof(*lv), alignof(struct imap_parser_level));

		memcpy(lv, p->levels, p->levels_cap * sizeof(*lv));
		p->levels = lv;
		p->levels_cap = cap;
	}
	p->depth++;
	memset(&p->levels[p->depth], 0, sizeof(p->levels[0]));
	p->levels[p->depth].owner = owner;
	return 0;
}

static void
list_close(struct imap_parser *p)
{
	struct imap_parser_level *lv = &p->levels[p->depth];

	lv->owner->list = level_array(p, lv);
	lv->owner->len = lv->n;
	p->depth--;
}

/* ---- Characters ------------------------------------------------------- */

/* RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials: "(" ")" "{"
 * SP CTL "%" "*" DQUOTE "\" "]". */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR adds "]". */
static bool
is_tag_char(unsigned char c)
{
	return c == ']' || (is_atom_char(c) && c != '+');
}

/* The characters of an atom argument: ASTRING-CHAR, plus the
 * list-wildcards of LIST patterns and sequence sets ("%", "*"). A leading
 * "\" (flags) is handled by the caller. */
static bool
is_arg_char(unsigned char c)
{
	return is_atom_char(c) || c == ']' || c == '%' || c == '*';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static const char *
bad_char_text(unsigned char c)
{
	if (c == '\0')
		return "NUL byte outside a literal";
	if (c >= 0x80)
		return "8-bit characters need a quoted string or a literal";
	return "Invalid character in an atom";
}

/* Returns the length of the UTF-8 sequence at s (at most n bytes) if it is
 * a well-formed UTF8-2, UTF8-3 or UTF8-4 (RFC 3629 §4: no overlongs, no
 * surrogates, nothing past U+10FFFF), else 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* ---- Tokens of one line ----------------------------------------------- */

enum seg {
	SEG_EMPTY,		/* a blank line between commands */
	SEG_END,		/* the command is complete */
	SEG_LITERAL,		/* literal data follows */
	SEG_ERROR,		/* error_text set; drop the command */
	SEG_FATAL,		/* error_text set; close */
};

/* Checks the quoted string that opens at s[i] (RFC 9051 §9 quoted: only
 * \" and \\ escape; UTF-8 only when enabled). Returns NULL with *end_out
 * just past the closing quote and *n_out the unescaped length, or the
 * error text with *end_out at the offending byte. */
static const char *
quoted_scan(const struct imap_parser *p, const char *s, size_t len,
    size_t i, size_t *end_out, size_t *n_out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t j = i + 1, n = 0;

	for (;;) {
		if (j >= len) {
			*end_out = j;
			return "Missing closing quote";
		}
		unsigned char c = u[j];

		if (c == '"') {
			*end_out = j + 1;
			*n_out = n;
			return NULL;
		}
		*end_out = j;
		if (c == '\\') {
			if (j + 1 >= len || (s[j + 1] != '"' &&
			    s[j + 1] != '\\'))
				return "Only \\\" and \\\\ may be escaped in a "
				    "quoted string";
			j += 2;
			n++;
			continue;
		}
		if (c == '\0')
			return "NUL byte outside a literal";
		if (c == '\r')
			return "CR in a quoted string";
		if (c >= 0x80) {
			size_t ul;

			if (!p->is_utf8)
				return "8-bit characters need a literal "
				    "(or UTF-8 enabled)";
			ul = utf8_len(u + j, len - j);
			if (ul == 0)
				return "Invalid UTF-8 in a quoted string";
			j += ul;
			n += ul;
			continue;
		}
		j++;
		n++;
	}
}

/* Copies the checked quoted string at s[i] into the arena, unescaped. */
static char *
quoted_copy(struct imap_parser *p, const char *s, size_t i, size_t n)
{
	char *d = cmd_alloc(p->cmd, n + 1, 1);
	size_t j = i + 1, k = 0;

	while (k < n) {
		if (s[j] == '\\')
			j++;
		d[k++] = s[j++];
	}
	d[n] = '\0';
	return d;
}

/* FETCH attributes whose "[...]" is a section (RFC 9051 §6.4.5, RFC 3516
 * §4.2): for them the brackets, spaces and lists inside included, are one
 * atom. Anywhere else "[" is an ordinary atom character. */
static bool
is_section_prefix(const char *s, size_t n)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};
	size_t k;

	for (k = 0; k < ARRAY_LEN(names); k++)
		if (strlen(names[k]) == n && strncasecmp(s, names[k], n) == 0)
			return true;
	return false;
}

/* Reads the section that opens at s[*jp] ("[") up to its "]". Returns NULL
 * with *jp just past it, or the error text with *jp at the fault. */
static const char *
section_scan(const struct imap_parser *p, const char *s, size_t len,
    size_t *jp)
{
	size_t j = *jp + 1;

	for (;;) {
		if (j >= len) {
			*jp = j;
			return "Missing ] after a section";
		}
		unsigned char c = (unsigned char)s[j];

		if (c == ']') {
			*jp = j + 1;
			return NULL;
		}
		if (c == '"') {
			size_t end, n;
			const char *err = quoted_scan(p, s, len, j, &end, &n);

			if (err != NULL) {
				*jp = end;
				return err;
			}
			j = end;
			continue;
		}
		*jp = j;
		if (c == '{')
			return "Literals inside a section are not supported";
		if (c == '[' || c == '\\')
			return "Invalid character in a section";
		if (c != ' ' && c != '(' && c != ')' && !is_arg_char(c))
			return bad_char_text(c);
		j++;
	}
}

/* Reads the atom (or flag, or section attribute) at s[*ip]. */
static const char *
atom_scan(struct imap_parser *p, const char *s, size_t len, size_t *ip)
{
	size_t i = *ip, j = i, word;
	bool has_section = false;
	struct imap_arg *a;

	if (s[j] == '\\')
		j++;
	word = j;
	while (j < len) {
		unsigned char c = (unsigned char)s[j];

		if (c == '[' && !has_section && j > word &&
		    is_section_prefix(s + word, j - word)) {
			const char *err = section_scan(p, s, len, &j);

			if (err != NULL) {
				*ip = j;
				return err;
			}
			has_section = true;
			continue;
		}
		if (!is_arg_char(c))
			break;
		j++;
	}
	if (j < len && s[j] != ' ' && s[j] != ')') {
		*ip = j;
		return bad_char_text((unsigned char)s[j]);
	}
	if (j == word) {
		*ip = j;
		return j > i ? "Invalid flag" : "Invalid character in an atom";
	}
	if (j - i == 3 && strncasecmp(s + i, "NIL", 3) == 0)
		a = arg_add(p, IMAP_ARG_NIL);
	else
		a = arg_add(p, IMAP_ARG_ATOM);
	if (a == NULL) {
		*ip = i;
		return p->error_text;
	}
	a->str = cmd_strndup(p->cmd, s + i, j - i);
	a->len = j - i;
	*ip = j;
	return NULL;
}

/* Reads the literal announcement at s[i], which must end the line, and
 * checks it against the limits. */
static enum seg
literal_scan(struct imap_parser *p, const char *s, size_t len, size_t i)
{
	size_t j = i;
	uint64_t n = 0;
	bool is8 = false, is_plus = false, is_huge = false, has_digits = false;
	struct imap_arg *a;

	if (s[j] == '~') {
		is8 = true;
		j++;
	}
	for (j++; j < len && is_digit((unsigned char)s[j]); j++) {
		unsigned d = (unsigned)(s[j] - '0');

		has_digits = true;
		if (n > (UINT64_MAX - d) / 10)
			is_huge = true;
		else
			n = n * 10 + d;
	}
	if (j < len && s[j] == '+') {
		is_plus = true;
		j++;
	}
	if (!has_digits || j >= len || s[j] != '}') {
		p->error_text = "Invalid literal";
		return SEG_ERROR;
	}
	if (j + 1 != len) {
		p->error_text = "A literal must end its line";
		return SEG_ERROR;
	}
	/* RFC 7888 §4: the client sends a {n+} literal without waiting, so
	 * refusing one we will not skip means closing. */
	if (is_huge || n > p->literal_max ||
	    p->literal_total > p->literal_max - n ||
	    (is_plus && n > p->literal_plus_max)) {
		p->error_text = TEXT_TOOBIG_LITERAL;
		return is_plus ? SEG_FATAL : SEG_ERROR;
	}
	if (p->nliterals >= p->literals_max) {
		p->error_text = "[LIMIT] Too many literals in one command";
		return SEG_ERROR;
	}
	if (p->literal_check != NULL && n > 0) {
		int rc = p->literal_check(p->spool_arg, p->cmd->name, n,
		    p->literal_total);

		/* Refused like one over literal_max: BAD before the
		 * continuation of a {n}; a {n+} is dropped by the skip. */
		if (rc == IMAP_LITERAL_REFUSE) {
			p->error_text = TEXT_TOOBIG_LITERAL;
			return SEG_ERROR;
		}
		p->lit_spool_errno = rc;
	}
	/* Decided before the continuation, so that a spool that cannot be
	 * had refuses a {n} before its bytes come. A literal goes to the
	 * file when it is large, or when the command's literals in memory
	 * would pass spool_min with it: many literals just under spool_min
	 * (a MULTIAPPEND) must not add up in memory to literal_max. */
	if (p->lit_spool_errno == 0 && p->spool_open != NULL && n > 0 &&
	    (n >= p->spool_min || p->literal_mem > p->spool_min - n))
		spool_begin(p);
	a = arg_add(p, is8 ? IMAP_ARG_LITERAL8 : IMAP_ARG_LITERAL);
	if (a == NULL) {
		/* The command is dropped, and its file with it. */
		p->lit_fd = -1;
		p->lit_spool_errno = 0;
		return SEG_ERROR;
	}
	p->nliterals++;
	p->literal_total += n;
	if (p->lit_fd >= 0 || p->lit_spool_errno != 0)
		a->len = (size_t)n;	/* the bytes the file will hold */
	else
		p->literal_mem += n;
	p->lit_arg = a;
	p->lit_left = n;
	p->is_lit8 = is8;
	p->is_lit_plus = is_plus;
	return SEG_LITERAL;
}

/* Reads the tag and the command name (and the name after "UID") that
 * start a command's first line. Returns 0 with *ip past them, or -1. */
static int
head_scan(struct imap_parser *p, const char *s, size_t len, size_t *ip)
{
	size_t i = 0, j;

	while (i < len && s[i] != ' ') {
		if (!is_tag_char((unsigned char)s[i])) {
			*ip = i;
			p->error_text = s[i] == '\0' ?
			    "NUL byte outside a literal" : "Invalid tag";
			return -1;
		}
		i++;
	}
	if (i == 0) {
		*ip = 0;
		p->error_text = "Missing tag";
		return -1;
	}
	p->cmd->tag = cmd_strndup(p->cmd, s, i);
	for (;;) {
		if (i >= len || s[i] != ' ' || i + 1 >= len ||
		    s[i + 1] == ' ') {
			*ip = i;
			p->error_text = p->cmd->is_uid ?
			    "Missing command after UID" :
			    "Missing command name";
			return -1;
		}
		j = ++i;
		while (j < len && is_atom_char((unsigned char)s[j]))
			j++;
		if (j == i || (j < len && s[j] != ' ')) {
			*ip = j;
			p->error_text = j < len && s[j] == '\0' ?
			    "NUL byte outside a literal" :
			    "Invalid command name";
			return -1;
		}
		if (!p->cmd->is_uid && j - i == 3 &&
		    strncasecmp(s + i, "UID", 3) == 0) {
			p->cmd->is_uid = true;
			i = j;
			continue;
		}
		break;
	}
	p->cmd->name = cmd_strndup(p->cmd, s + i, j - i);
	for (char *c = p->cmd->name; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	*ip = j;
	return 0;
}

/* Reads the tokens of one line of len bytes (line end removed). */
static enum seg
segment_scan(struct imap_parser *p, const char *s, size_t len)
{
	size_t i = 0;
	bool need_sep = true;

	if (p->state == IMAP_PARSER_TAG) {
		if (len == 0)
			return SEG_EMPTY;
		p->cmd = cmd_new();
		levels_start(p);
		if (head_scan(p, s, len, &i) < 0)
			return SEG_ERROR;
	}
	/* Arguments are separated by one space (RFC 9051 §9); runs of
	 * spaces and a trailing space are forgiven, as clients send them. */
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		const char *err = NULL;

		if (c == ' ') {
			i++;
			need_sep = false;
			continue;
		}
		if (c == ')') {
			if (p->depth == 0) {
				p->error_text = "Unexpected )";
				return SEG_ERROR;
			}
			list_close(p);
			i++;
			need_sep = true;
			continue;
		}
		if (need_sep) {
			p->error_text = "Missing space between arguments";
			return SEG_ERROR;
		}
		if (c == '(') {
			if (list_open(p) < 0)
				return SEG_ERROR;
			i++;
			continue;
		}
		if (c == '{' || (c == '~' && i + 1 < len && s[i + 1] == '{'))
			return literal_scan(p, s, len, i);
		if (c == '"') {
			size_t end, n;
			struct imap_arg *a;

			err = quoted_scan(p, s, len, i, &end, &n);
			if (err == NULL) {
				a = arg_add(p, IMAP_ARG_QUOTED);
				if (a == NULL) {
					err = p->error_text;
				} else {
					a->str = quoted_copy(p, s, i, n);
					a->len = n;
					i = end;
				}
			} else {
				i = end;
			}
		} else {
			err = atom_scan(p, s, len, &i);
		}
		if (err != NULL) {
			p->error_text = err;
			return SEG_ERROR;
		}
		need_sep = true;
	}
	if (p->depth > 0) {
		p->error_text = "Missing )";
		return SEG_ERROR;
	}
	return SEG_END;
}

/* ---- Feeding ---------------------------------------------------------- */

enum step {
	STEP_AGAIN,		/* state changed; go on */
	STEP_MORE,		/* the buf is used up */
	STEP_CONTINUATION,	/* a {n} was accepted */
	STEP_DONE,
	STEP_ERROR,
};

enum {
	TAIL_NONE,
	TAIL_OPEN,		/* "{" and maybe digits */
	TAIL_PLUS,		/* "{n+" */
	TAIL_CLOSED,		/* "{n}" or "{n+}" */
	TAIL_CR,		/* and CR */
};

static void
error_clear(struct imap_parser *p)
{
	free(p->error_tag);
	p->error_tag = NULL;
	p->error_text = NULL;
	p->is_fatal = false;
}

static void
command_drop(struct imap_parser *p)
{
	imap_cmd_free(&p->cmd);
	if (p->lit_chunk != NULL) {
		chunk_free(p->lit_chunk);
		p->lit_chunk = NULL;
	}
	spool_close(p);
	p->levels = NULL;
	p->levels_cap = 0;
	p->depth = 0;
	p->nargs = 0;
	p->nliterals = 0;
	p->literal_total = 0;
	p->literal_mem = 0;
	p->line_used = 0;
	p->lit_arg = NULL;
	p->lit_left = 0;
	p->scanned = 0;
}

/* Keeps the tag of the command being dropped for the BAD reply. */
static void
error_tag_keep(struct imap_parser *p)
{
	if (p->cmd != NULL && p->cmd->tag != NULL && p->error_tag == NULL)
		p->error_tag = xstrdup(p->cmd->tag);
}

/* Starts dropping input from p->off up to the end of the current line,
 * then any {n+} data that line announces, and so on to the command's
 * end: a refused command must not leave bytes behind that would read as
 * commands (RFC 7888 §4). */
static void
skip_start(struct imap_parser *p)
{
	error_tag_keep(p);
	command_drop(p);
	p->state = IMAP_PARSER_SKIP_LINE;
	p->tail = TAIL_NONE;
	p->is_skip_plain = false;
}

static void
close_fatal(struct imap_parser *p, const char *text)
{
	error_tag_keep(p);
	command_drop(p);
	p->error_text = text;
	p->is_fatal = true;
	p->state = IMAP_PARSER_CLOSED;
}

/* For a line over line_max before the tag was parsed: the tag, if the
 * bytes start with a valid one followed by a space. */
static void
error_tag_guess(struct imap_parser *p, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != ' '; i++)
		if (!is_tag_char((unsigned char)s[i]))
			return;
	if (i > 0 && i < n)
		p->error_tag = xstrndup(s, i);
}

/* The bound of the command's non-literal bytes: line_max, or id_line_max
 * for an ID command. Before its tag is parsed the name is read from the
 * bytes: "tag ID" then a space or the line end, within the first line_max
 * bytes. Only asked once line_max bytes are there, so the answer is the
 * same however the input was split. */
static size_t
line_limit(const struct imap_parser *p, const char *start, size_t avail)
{
	size_t i = 0;

	if (avail > p->line_max)
		avail = p->line_max;

	if (p->id_line_max <= p->line_max)
		return p->line_max;
	if (p->state != IMAP_PARSER_TAG)
		return p->cmd != NULL && p->cmd->name != NULL &&
		    strcmp(p->cmd->name, "ID") == 0 ? p->id_line_max :
		    p->line_max;
	while (i < avail && is_tag_char((unsigned char)start[i]))
		i++;
	if (i == 0 || avail - i < 4 || start[i] != ' ' ||
	    strncasecmp(start + i + 1, "ID", 2) != 0 ||
	    (start[i + 3] != ' ' && start[i + 3] != '\r' &&
	    start[i + 3] != '\n'))
		return p->line_max;
	return p->id_line_max;
}

static enum step
step_line(struct imap_parser *p, struct buf *in, struct imap_cmd **cmd_out)
{
	size_t avail = in->len - p->off;
	const char *start, *lf = NULL;
	size_t allowed, total, len;

	/* An empty buf may have no data at all: no arithmetic on NULL. */
	if (avail == 0)
		return STEP_MORE;
	start = in->data + p->off;
	if (avail > p->scanned)
		lf = memchr(start + p->scanned, '\n', avail - p->scanned);
	allowed = p->line_used < p->line_max ? p->line_max - p->line_used : 0;
	total = lf != NULL ? (size_t)(lf - start) + 1 : avail;
	if ((lf == NULL ? avail >= allowed : total > allowed) &&
	    p->id_line_max > p->line_max) {
		size_t limit = line_limit(p, start, avail);

		allowed = p->line_used < limit ? limit - p->line_used : 0;
	}
	if (lf == NULL ? avail >= allowed : total > allowed) {
		/* Only the bytes within the limit, which are there however
		 * the input was split, so the answer is the same. */
		if (p->state == IMAP_PARSER_TAG)
			error_tag_guess(p, start, allowed);
		p->error_text = TEXT_TOOBIG_LINE;
		skip_start(p);
		return STEP_ERROR;
	}
	if (lf == NULL) {
		p->scanned = avail;
		return STEP_MORE;
	}
	len = total - 1;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	p->line_used += total;
	p->scanned = 0;
	switch (segment_scan(p, start, len)) {
	case SEG_EMPTY:
		p->off += total;
		p->line_used = 0;
		return STEP_AGAIN;
	case SEG_END:
		p->off += total;
		p->cmd->args = level_array(p, &p->levels[0]);
		p->cmd->nargs = p->levels[0].n;
		*cmd_out = p->cmd;
		p->cmd = NULL;
		command_drop(p);
		p->state = IMAP_PARSER_TAG;
		return STEP_DONE;
	case SEG_LITERAL:
		p->off += total;
		p->state = IMAP_PARSER_LITERAL;
		return p->is_lit_plus ? STEP_AGAIN : STEP_CONTINUATION;
	case SEG_ERROR:
		/* Dropped from its start, so that the recognizer of a
		 * literal announcement at its end sees the whole line. */
		skip_start(p);
		return STEP_ERROR;
	case SEG_FATAL:
		close_fatal(p, p->error_text);
		return STEP_ERROR;
	}
	panic("imap_parser: bad segment result");
}

/* Writes all of data to the spool file. Returns 0, or -1. */
static int
spool_write(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Drops the rest of the literal being read, with error_text set. */
static enum step
literal_refuse(struct imap_parser *p, const char *text)
{
	p->error_text = text;
	p->skip_left = p->lit_left;
	skip_start(p);
	p->state = IMAP_PARSER_SKIP_LITERAL;
	return STEP_ERROR;
}

/* step_literal for a literal that goes to p->lit_fd. */
static enum step
step_literal_spool(struct imap_parser *p, struct buf *in)
{
	size_t avail = in->len - p->off;

	while (p->lit_left > 0) {
		size_t take = avail;

		if (avail == 0)
			return STEP_MORE;
		if (take > p->lit_left)
			take = (size_t)p->lit_left;
		if (!p->is_lit8 && memchr(in->data + p->off, '\0', take))
			return literal_refuse(p, TEXT_LITERAL_NUL);
		/* A failed spool (disk full) drops the rest, so that the
		 * command can still be answered (NO, not BAD). */
		if (p->lit_fd >= 0 && spool_write(p->lit_fd, in->data +
		    p->off, take) < 0) {
			/* The file stays the command's (cmd->fds); the
			 * literals after this one are dropped too. */
			p->lit_spool_errno = errno != 0 ? errno : EIO;
			p->spool_errno = p->lit_spool_errno;
			p->lit_fd = -1;
		}
		p->off += take;
		p->lit_left -= take;
		avail -= take;
	}
	if (p->lit_fd >= 0)
		p->spool_len += p->lit_arg->len;
	p->lit_arg->str = cmd_strndup(p->cmd, "", 0);
	p->lit_arg->is_spooled = true;
	p->lit_arg->fd = p->lit_fd;
	p->lit_arg->spool_off = p->lit_off;
	p->lit_arg->spool_errno = p->lit_spool_errno;
	p->lit_fd = -1;
	p->lit_spool_errno = 0;
	p->lit_off = 0;
	p->lit_arg = NULL;
	p->state = IMAP_PARSER_ARGS;
	p->scanned = 0;
	return STEP_AGAIN;
}

static enum step
step_literal(struct imap_parser *p, struct buf *in)
{
	size_t avail = in->len - p->off;
	struct imap_chunk *c = p->lit_chunk;

	if (p->lit_fd >= 0 || p->lit_spool_errno != 0)
		return step_literal_spool(p, in);
	if (c == NULL) {
		/* lit_left <= literal_max, which fits a size_t. */
		size_t want = (size_t)p->lit_left + 1;

		c = p->lit_chunk = chunk_new(want < LITERAL_FIRST ? want :
		    LITERAL_FIRST);
		p->cmd->mem_size += CHUNK_HDR + c->size;
	}
	while (p->lit_left > 0) {
		size_t take;

		if (avail == 0)
			return STEP_MORE;
		if (c->used + 1 == c->size) {
			size_t size = c->size * 2;
			size_t want = c->used + (size_t)p->lit_left + 1;

			if (size > want)
				size = want;
			p->cmd->mem_size += size - c->size;
			c = p->lit_chunk = xrealloc(c, CHUNK_HDR + size);
			c->size = size;
		}
		take = c->size - 1 - c->used;
		if (take > p->lit_left)
			take = (size_t)p->lit_left;
		if (take > avail)
			take = avail;
		/* RFC 9051 §4.3: NUL may only appear in literal8. */
		if (!p->is_lit8 && memchr(in->data + p->off, '\0', take))
			return literal_refuse(p, TEXT_LITERAL_NUL);
		memcpy(chunk_data(c) + c->used, in->data + p->off, take);
		c->used += take;
		p->off += take;
		p->lit_left -= take;
		avail -= take;
	}
	chunk_data(c)[c->used] = '\0';
	p->lit_arg->str = chunk_data(c);
	p->lit_arg->len = c->used;
	c->next = p->cmd->chunks->next;
	p->cmd->chunks->next = c;
	p->lit_chunk = NULL;
	p->lit_arg = NULL;
	p->state = IMAP_PARSER_ARGS;
	p->scanned = 0;
	return STEP_AGAIN;
}

static void
tail_push(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case '{':
		p->tail = TAIL_OPEN;
		p->tail_n = 0;
		p->has_tail_digits = false;
		p->is_tail_plus = false;
		return;
	case '+':
		if (p->tail == TAIL_OPEN && p->has_tail_digits) {
			p->tail = TAIL_PLUS;
			p->is_tail_plus = true;
			return;
		}
		break;
	case '}':
		if ((p->tail == TAIL_OPEN && p->has_tail_digits) ||
		    p->tail == TAIL_PLUS) {
			p->tail = TAIL_CLOSED;
			return;
		}
		break;
	case '\r':
		if (p->tail == TAIL_CLOSED) {
			p->tail = TAIL_CR;
			return;
		}
		break;
	default:
		if (is_digit(c) && p->tail == TAIL_OPEN) {
			unsigned d = (unsigned)(c - '0');

			if (p->tail_n > (UINT64_MAX - d) / 10)
				p->tail_n = UINT64_MAX;
			else
				p->tail_n = p->tail_n * 10 + d;
			p->has_tail_digits = true;
			return;
		}
		break;
	}
	p->tail = TAIL_NONE;
}

static enum step
step_skip_line(struct imap_parser *p, struct buf *in)
{
	size_t avail = in->len - p->off;
	const unsigned char *s;
	size_t k;

	if (avail == 0)
		return STEP_MORE;
	s = (const unsigned char *)in->data + p->off;
	for (k = 0; k < avail; k++) {
		if (s[k] != '\n') {
			if (!p->is_skip_plain)
				tail_push(p, s[k]);
			continue;
		}
		p->off += k + 1;
		p->scanned = 0;
		if ((p->tail == TAIL_CLOSED || p->tail == TAIL_CR) &&
		    p->is_tail_plus) {
			/* The client sends this data whatever we say; a {n}
			 * without "+" waits for a continuation that never
			 * comes. */
			if (p->tail_n > p->literal_plus_max) {
				close_fatal(p, TEXT_TOOBIG_LITERAL);
				return STEP_ERROR;
			}
			p->skip_left = p->tail_n;
			p->state = IMAP_PARSER_SKIP_LITERAL;
		} else {
			p->state = IMAP_PARSER_TAG;
		}
		p->tail = TAIL_NONE;
		return STEP_AGAIN;
	}
	p->off += avail;
	return STEP_MORE;
}

static enum step
step_skip_literal(struct imap_parser *p, struct buf *in)
{
	size_t avail = in->len - p->off;

	if (p->skip_left > avail) {
		p->skip_left -= avail;
		p->off += avail;
		return STEP_MORE;
	}
	p->off += (size_t)p->skip_left;
	p->skip_left = 0;
	p->state = IMAP_PARSER_SKIP_LINE;
	p->tail = TAIL_NONE;
	return STEP_AGAIN;
}

enum parse_rc
imap_parser_feed(struct imap_parser *p, struct buf *in,
    struct imap_cmd **cmd_out, bool *need_continuation_out)
{
	*cmd_out = NULL;
	*need_continuation_out = false;
	if (p->state == IMAP_PARSER_CLOSED) {
		p->is_fatal = true;
		return PARSE_ERROR;
	}
	error_clear(p);
	for (;;) {
		enum step st;

		switch (p->state) {
		case IMAP_PARSER_TAG:
		case IMAP_PARSER_ARGS:
			st = step_line(p, in, cmd_out);
			break;
		case IMAP_PARSER_LITERAL:
			st = step_literal(p, in);
			break;
		case IMAP_PARSER_SKIP_LINE:
			st = step_skip_line(p, in);
			break;
		case IMAP_PARSER_SKIP_LITERAL:
			st = step_skip_literal(p, in);
			break;
		default:
			panic("imap_parser_feed: state %d", (int)p->state);
		}
		switch (st) {
		case STEP_AGAIN:
			continue;
		case STEP_MORE:
			return PARSE_MORE;
		case STEP_CONTINUATION:
			*need_continuation_out = true;
			return PARSE_MORE;
		case STEP_DONE:
			return PARSE_DONE;
		case STEP_ERROR:
			return PARSE_ERROR;
		}
	}
}

enum parse_rc
imap_parser_read_line(struct imap_parser *p, struct buf *in,
    const char **line_out, size_t *len_out)
{
	if (p->state == IMAP_PARSER_CLOSED) {
		p->is_fatal = true;
		return PARSE_ERROR;
	}
	error_clear(p);
	for (;;) {
		enum step st;

		if (p->state == IMAP_PARSER_SKIP_LINE)
			st = step_skip_line(p, in);
		else if (p->state == IMAP_PARSER_SKIP_LITERAL)
			st = step_skip_literal(p, in);
		else if (p->state == IMAP_PARSER_TAG)
			break;
		else
			panic("imap_parser_read_line: inside a command");
		if (st == STEP_MORE)
			return PARSE_MORE;
		if (st == STEP_ERROR)
			return PARSE_ERROR;
	}

	size_t avail = in->len - p->off;
	const char *start, *lf = NULL;
	size_t total;

	if (avail == 0)
		return PARSE_MORE;
	start = in->data + p->off;
	if (avail > p->scanned)
		lf = memchr(start + p->scanned, '\n', avail - p->scanned);
	total = lf != NULL ? (size_t)(lf - start) + 1 : avail;
	if (lf == NULL ? avail >= p->line_max : total > p->line_max) {
		p->error_text = "[TOOBIG] Line too long";
		skip_start(p);
		/* Not a command line: a "{n+}" at its end announces
		 * nothing. */
		p->is_skip_plain = true;
		return PARSE_ERROR;
	}
	if (lf == NULL) {
		p->scanned = avail;
		return PARSE_MORE;
	}
	*line_out = start;
	*len_out = total - 1;
	if (*len_out > 0 && start[*len_out - 1] == '\r')
		(*len_out)--;
	p->off += total;
	p->scanned = 0;
	return PARSE_DONE;
}

void
imap_parser_compact(struct imap_parser *p, struct buf *in)
{
	buf_consume(in, p->off);
	p->off = 0;
	/* After an APPEND's literal or a long line, an idle session keeps
	 * no more than the usual few hundred bytes of input buffer. */
	buf_trim(in, IMAP_PARSER_BUF_KEEP);
}

void
imap_parser_init(struct imap_parser *p, size_t line_max, size_t literal_max)
{
	memset(p, 0, sizeof(*p));
	p->line_max = line_max;
	p->literal_max = literal_max;
	p->literal_plus_max = literal_max;
	p->lit_fd = -1;
	p->spool_fd = -1;
	p->literals_max = IMAP_PARSER_LITERALS_MAX;
	p->args_max = IMAP_PARSER_ARGS_MAX;
	p->state = IMAP_PARSER_TAG;
}

void
imap_parser_reset(struct imap_parser *p)
{
	error_clear(p);
	command_drop(p);
	p->off = 0;
	p->skip_left = 0;
	p->tail = TAIL_NONE;
	p->state = IMAP_PARSER_TAG;
}

void
imap_parser_deinit(struct imap_parser *p)
{
	error_clear(p);
	command_drop(p);
}

/* ---- Reading arguments ------------------------------------------------ */

bool
imap_arg_number64(const struct imap_arg *a, uint64_t *n_out)
{
	uint64_t n = 0;
	size_t i;

	if (a->kind != IMAP_ARG_ATOM || a->len == 0)
		return false;
	for (i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->str[i];

		if (!is_digit(c))
			return false;
		/* RFC 9051 §9: number64 is a 63-bit integer. */
		if (n > ((uint64_t)INT64_MAX - (c - '0')) / 10)
			return false;
		n = n * 10 + (c - '0');
	}
	*n_out = n;
	return true;
}

bool
imap_arg_number(const struct imap_arg *a, uint32_t *n_out)
{
	uint64_t n;

	if (!imap_arg_number64(a, &n) || n > UINT32_MAX)
		return false;
	*n_out = (uint32_t)n;
	return true;
}

bool
imap_arg_string(const struct imap_arg *a, const char **str_out,
    size_t *len_out)
{
	if ((a->kind != IMAP_ARG_QUOTED && a->kind != IMAP_ARG_LITERAL) ||
	    a->is_spooled)
		return false;
	*str_out = a->str;
	*len_out = a->len;
	return true;
}

bool
imap_arg_astring(const struct imap_arg *a, const char **str_out,
    size_t *len_out)
{
	if (a->kind != IMAP_ARG_ATOM && a->kind != IMAP_ARG_NIL)
		return imap_arg_string(a, str_out, len_out);
	/* An astring atom has no list-wildcards, and no "\" or "[...]" with
	 * spaces (RFC 9051 §9 ASTRING-CHAR). */
	for (size_t i = 0; i < a->len; i++)
		if (!is_atom_char((unsigned char)a->str[i]) &&
		    a->str[i] != ']')
			return false;
	*str_out = a->str;
	*len_out = a->len;
	return true;
}

bool
imap_arg_nstring(const struct imap_arg *a, const char **str_out,
    size_t *len_out)
{
	if (a->kind == IMAP_ARG_NIL) {
		*str_out = NULL;
		*len_out = 0;
		return true;
	}
	return imap_arg_string(a, str_out, len_out);
}

bool
is_imap_arg_atom(const struct imap_arg *a, const char *word)
{
	return (a->kind == IMAP_ARG_ATOM || a->kind == IMAP_ARG_NIL) &&
	    strlen(word) == a->len && strcasecmp(a->str, word) == 0;
}
