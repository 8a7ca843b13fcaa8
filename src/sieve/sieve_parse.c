/*
 * sieve_parse: the lexer and parser of RFC 5228 §8 and the validation of
 * every command against its extension's grammar, producing the program
 * sieve_run.c runs. Tokens: identifiers, tags, numbers with K/M/G,
 * quoted strings, text: multi-line strings (dot-stuffed), '#' and
 * bracket comments. Each error says its line, as Pigeonhole does.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sieve/sieve_int.h"

/* ---- Arena ------------------------------------------------------------- */

struct sv_chunk {
	struct sv_chunk *next;
	size_t size, off;
	_Alignas(16) unsigned char data[];
};

void *
sv_alloc(struct sv_arena *a, size_t n)
{
	struct sv_chunk *c = a->head;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (c == NULL || c->size - c->off < n) {
		size_t size = n > 8192 ? n : 8192;

		c = xmalloc(sizeof(*c) + size);
		c->size = size;
		c->off = 0;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->off;
	c->off += n;
	a->used += n;
	memset(p, 0, n);
	return p;
}

char *
sv_strndup(struct sv_arena *a, const char *s, size_t n)
{
	char *p = sv_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
sv_arena_free(struct sv_arena *a)
{
	while (a->head != NULL) {
		struct sv_chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
	a->used = 0;
}

/* ---- Extensions -------------------------------------------------------- */

static const char *const ext_names[] = {
	[EXT_FILEINTO] = "fileinto",
	[EXT_ENVELOPE] = "envelope",
	[EXT_ENCODED_CHARACTER] = "encoded-character",
	[EXT_VARIABLES] = "variables",
	[EXT_IMAP4FLAGS] = "imap4flags",
	[EXT_SUBADDRESS] = "subaddress",
	[EXT_COPY] = "copy",
	[EXT_RELATIONAL] = "relational",
	[EXT_BODY] = "body",
	[EXT_REJECT] = "reject",
	[EXT_EREJECT] = "ereject",
	[EXT_MAILBOX] = "mailbox",
	[EXT_VACATION] = "vacation",
	[EXT_VACATION_SECONDS] = "vacation-seconds",
	[EXT_DATE] = "date",
	[EXT_INDEX] = "index",
	[EXT_DUPLICATE] = "duplicate",
	[EXT_EDITHEADER] = "editheader",
	[EXT_REGEX] = "regex",
	[EXT_SPAMTEST] = "spamtest",
	[EXT_SPAMTESTPLUS] = "spamtestplus",
	[EXT_VIRUSTEST] = "virustest",
	[EXT_INCLUDE] = "include",
	[EXT_CMP_NUMERIC] = "comparator-i;ascii-numeric",
	[EXT_COUNT] = NULL,
};

const char *
sieve_extensions(void)
{
	return "fileinto envelope encoded-character variables imap4flags "
	    "subaddress copy relational body reject ereject mailbox "
	    "vacation vacation-seconds date index duplicate editheader "
	    "regex spamtest spamtestplus virustest include "
	    "comparator-i;ascii-numeric";
}

/* ---- Lexer ------------------------------------------------------------- */

enum tok {
	TK_EOF, TK_IDENT, TK_TAG, TK_NUM, TK_STR, TK_LBRACKET, TK_RBRACKET,
	TK_COMMA, TK_LPAREN, TK_RPAREN, TK_LBRACE, TK_RBRACE, TK_SEMI,
	TK_ERROR,
};

struct parser {
	const char *s;
	size_t len, pos;
	unsigned line;
	/* the current token */
	enum tok tok;
	unsigned tok_line;
	char *text;		/* identifier, tag (without ':'), string */
	size_t text_len;
	size_t text_cap;
	uint64_t num;
	bool is_text_multiline;
	/* */
	struct sieve_program *prog;
	struct sv_script *script;
	const struct sieve_compile_opts *opts;
	struct sieve_error *err;
	bool failed;
	unsigned depth;
	unsigned include_depth;
	/* an if/elsif is the previous command of this block */
	bool after_if;
	bool seen_other;	/* a command other than require was seen */
};

static void
fail(struct parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
}

static void
text_add(struct parser *p, char c)
{
	if (p->text_len + 2 > p->text_cap) {
		p->text_cap = p->text_cap ? p->text_cap * 2 : 256;
		p->text = xrealloc(p->text, p->text_cap);
	}
	p->text[p->text_len++] = c;
	p->text[p->text_len] = '\0';
}

static void
text_reset(struct parser *p)
{
	p->text_len = 0;
	if (p->text != NULL)
		p->text[0] = '\0';
}

/* Skips white space and comments. Returns false after an error. */
static bool
skip_space(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c == '\n') {
			p->line++;
			p->pos++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '#') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (c == '/' && p->pos + 1 < p->len &&
		    p->s[p->pos + 1] == '*') {
			unsigned start = p->line;

			p->pos += 2;
			for (;;) {
				if (p->pos + 1 >= p->len) {
					fail(p, start, "unterminated comment");
					return false;
				}
				if (p->s[p->pos] == '*' &&
				    p->s[p->pos + 1] == '/')
					break;
				if (p->s[p->pos] == '\n')
					p->line++;
				p->pos++;
			}
			p->pos += 2;
		} else {
			break;
		}
	}
	return true;
}

static bool
is_ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool
is_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Reads a text: multi-line string after "text:" (RFC 5228 §2.4.2). */
static void
lex_multiline(struct parser *p)
{
	/* white space and an optional hash comment up to the line end */
	while (p->pos < p->len && (p->s[p->pos] == ' ' ||
	    p->s[p->pos] == '\t'))
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '#') {
		while (p->pos < p->len && p->s[p->pos] != '\n')
			p->pos++;
	}
	if (p->pos < p->len && p->s[p->pos] == '\r')
		p->pos++;
	if (p->pos >= p->len || p->s[p->pos] != '\n') {
		fail(p, p->line, "garbage after text: before the line end");
		p->tok = TK_ERROR;
		return;
	}
	p->pos++;
	p->line++;
	for (;;) {
		size_t eol = p->pos, end;

		if (p->pos >= p->len) {
			fail(p, p->tok_line, "unterminated multi-line string");
			p->tok = TK_ERROR;
			return;
		}
		while (eol < p->len && p->s[eol] != '\n')
			eol++;
		end = eol;
		if (end > p->pos && p->s[end - 1] == '\r')
			end--;
		if (end - p->pos == 1 && p->s[p->pos] == '.') {
			p->pos = eol < p->len ? eol + 1 : eol;
			p->line++;
			break;
		}
		/* dot-stuffing: a line starting ".." loses one dot */
		size_t i = p->pos;

		if (end - i >= 2 && p->s[i] == '.' && p->s[i + 1] == '.')
			i++;
		for (; i < end; i++)
			text_add(p, p->s[i]);
		text_add(p, '\r');
		text_add(p, '\n');
		if (p->text_len > SIEVE_MAX_SCRIPT)
			break;
		p->pos = eol < p->len ? eol + 1 : eol;
		p->line++;
	}
	p->tok = TK_STR;
	p->is_text_multiline = true;
}

static void
lex(struct parser *p)
{
	char c;

	text_reset(p);
	p->is_text_multiline = false;
	if (!skip_space(p)) {
		p->tok = TK_ERROR;
		return;
	}
	p->tok_line = p->line;
	if (p->pos >= p->len) {
		p->tok = TK_EOF;
		return;
	}
	c = p->s[p->pos];
	switch (c) {
	case '[': p->pos++; p->tok = TK_LBRACKET; return;
	case ']': p->pos++; p->tok = TK_RBRACKET; return;
	case ',': p->pos++; p->tok = TK_COMMA; return;
	case '(': p->pos++; p->tok = TK_LPAREN; return;
	case ')': p->pos++; p->tok = TK_RPAREN; return;
	case '{': p->pos++; p->tok = TK_LBRACE; return;
	case '}': p->pos++; p->tok = TK_RBRACE; return;
	case ';': p->pos++; p->tok = TK_SEMI; return;
	default: break;
	}
	if (c == '"') {
		p->pos++;
		for (;;) {
			if (p->pos >= p->len) {
				fail(p, p->tok_line, "unterminated string");
				p->tok = TK_ERROR;
				return;
			}
			c = p->s[p->pos++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (p->pos >= p->len)
					continue;
				c = p->s[p->pos++];
			}
			/* a line break in a string is CRLF (RFC 5228 §2.4.2),
			 * whatever the script file's line ends */
			if (c == '\n') {
				p->line++;
				if (p->text_len == 0 ||
				    p->text[p->text_len - 1] != '\r')
					text_add(p, '\r');
			}
			text_add(p, c);
		}
		p->tok = TK_STR;
		return;
	}
	if (c == ':') {
		p->pos++;
		if (p->pos >= p->len || !is_ident_start(p->s[p->pos])) {
			fail(p, p->line, "expected a tag name after ':'");
			p->tok = TK_ERROR;
			return;
		}
		while (p->pos < p->len && is_ident_char(p->s[p->pos]))
			text_add(p, p->s[p->pos++]);
		p->tok = TK_TAG;
		return;
	}
	if (isdigit((unsigned char)c)) {
		uint64_t v = 0;

		while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos])) {
			v = v * 10 + (uint64_t)(p->s[p->pos++] - '0');
			if (v > (1ull << 40)) {
				fail(p, p->line, "number too large");
				p->tok = TK_ERROR;
				return;
			}
		}
		if (p->pos < p->len) {
			switch (p->s[p->pos]) {
			case 'K': case 'k': v <<= 10; p->pos++; break;
			case 'M': case 'm': v <<= 20; p->pos++; break;
			case 'G': case 'g': v <<= 30; p->pos++; break;
			default: break;
			}
		}
		if (p->pos < p->len && is_ident_char(p->s[p->pos])) {
			fail(p, p->line, "invalid number");
			p->tok = TK_ERROR;
			return;
		}
		p->num = v;
		p->tok = TK_NUM;
		return;
	}
	if (is_ident_start(c)) {
		while (p->pos < p->len && is_ident_char(p->s[p->pos]))
			text_add(p, p->s[p->pos++]);
		if (p->pos < p->len && p->s[p->pos] == ':' &&
		    strcasecmp(p->text, "text") == 0) {
			p->pos++;
			text_reset(p);
			lex_multiline(p);
			return;
		}
		p->tok = TK_IDENT;
		return;
	}
	fail(p, p->line, "unexpected character '%c'",
	    isprint((unsigned char)c) ? c : '?');
	p->tok = TK_ERROR;
}

/* ---- Strings: encoded-character and variables -------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
put_utf8(char **o, unsigned long cp)
{
	unsigned char *u = (unsigned char *)*o;

	if (cp < 0x80) {
		*u++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*u++ = (unsigned char)(0xc0 | (cp >> 6));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*u++ = (unsigned char)(0xe0 | (cp >> 12));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*u++ = (unsigned char)(0xf0 | (cp >> 18));
		*u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*o = (char *)u;
}

/* Decodes one "${hex:...}" or "${unicode:...}" at s (RFC 5228 §2.4.2.4)
 * into *o. Returns the bytes consumed, 0 when s is not a valid one (left
 * as it is), or -1 for an invalid unicode code point. */
static long
encoded_char(const char *s, size_t n, char **o)
{
	size_t i;
	bool is_hex;
	char *out = *o;
	int count = 0;

	if (n >= 6 && strncasecmp(s, "${hex:", 6) == 0) {
		is_hex = true;
		i = 6;
	} else if (n >= 10 && strncasecmp(s, "${unicode:", 10) == 0) {
		is_hex = false;
		i = 10;
	} else {
		return 0;
	}
	for (;;) {
		unsigned long v = 0;
		size_t digits = 0;

		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n'))
			i++;
		if (i < n && s[i] == '}') {
			i++;
			break;
		}
		while (i < n && hexval(s[i]) >= 0) {
			v = v * 16 + (unsigned long)hexval(s[i]);
			if (v > 0x10ffffff)
				return 0;
			i++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '}' &&
		    s[i] != '\r' && s[i] != '\n')
			return 0;
		if (is_hex) {
			if (v > 0xff)
				return 0;
			*out++ = (char)v;
		} else {
			if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
				return -1;
			put_utf8(&out, v);
		}
		count++;
	}
	if (count == 0)
		return 0;
	*o = out;
	return (long)i;
}

/* The current string token as a program string. */
static struct sv_str
make_str(struct parser *p)
{
	struct sv_str r = { 0 };
	const char *s = p->text != NULL ? p->text : "";
	size_t n = p->text_len;

	if (p->script->exts & (1ull << EXT_ENCODED_CHARACTER) &&
	    memmem(s, n, "${", 2) != NULL) {
		char *buf = sv_alloc(&p->prog->arena, n + 1), *o = buf;

		for (size_t i = 0; i < n;) {
			if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
				long used = encoded_char(s + i, n - i, &o);

				if (used < 0) {
					fail(p, p->tok_line, "invalid unicode "
					    "character in encoded string");
					used = 1;
				}
				if (used > 0) {
					i += (size_t)used;
					continue;
				}
			}
			*o++ = s[i++];
		}
		*o = '\0';
		r.s = buf;
		r.len = (size_t)(o - buf);
	} else {
		r.s = sv_strndup(&p->prog->arena, s, n);
		r.len = n;
	}
	r.has_var = (p->script->exts & (1ull << EXT_VARIABLES)) != 0 &&
	    memmem(r.s, r.len, "${", 2) != NULL;
	return r;
}

/* ---- Grammar tables ---------------------------------------------------- */

/* Arguments of a command or test as parsed, before validation. */
enum raw_kind { RA_TAG, RA_NUM, RA_LIST };
struct raw_arg {
	enum raw_kind kind;
	unsigned line;
	char *tag;
	uint64_t num;
	struct sv_list list;
	bool is_single;		/* a string, not a bracketed list */
};

struct spec {
	const char *name;
	enum sv_id id;
	bool is_test;
	int ext;		/* -1: core */
	/* positional: 's' string, 'l' list, 'n' number; upper case is
	 * optional (only leading optional like setflag's variable) */
	const char *pos;
	/* allowed tags: flags of the match family and each tag's slot */
	unsigned flags;
};

enum {
	F_MATCH = 1,		/* comparator and match type */
	F_ADDR = 2,		/* address part */
	F_BLOCK = 4,		/* takes a block */
	F_TEST = 8,		/* takes one test */
	F_TESTS = 16,		/* takes a test list */
	F_INDEX = 32,		/* :index/:last (RFC 5260 §6) */
};

static const struct spec specs[] = {
	{ "require", C_REQUIRE, false, -1, "l", 0 },
	{ "if", C_IF, false, -1, "", F_TEST | F_BLOCK },
	{ "elsif", C_ELSIF, false, -1, "", F_TEST | F_BLOCK },
	{ "else", C_ELSE, false, -1, "", F_BLOCK },
	{ "stop", C_STOP, false, -1, "", 0 },
	{ "keep", C_KEEP, false, -1, "", 0 },
	{ "discard", C_DISCARD, false, -1, "", 0 },
	{ "redirect", C_REDIRECT, false, -1, "s", 0 },
	{ "fileinto", C_FILEINTO, false, EXT_FILEINTO, "s", 0 },
	{ "set", C_SET, false, EXT_VARIABLES, "ss", 0 },
	{ "setflag", C_SETFLAG, false, EXT_IMAP4FLAGS, "Sl", 0 },
	{ "addflag", C_ADDFLAG, false, EXT_IMAP4FLAGS, "Sl", 0 },
	{ "removeflag", C_REMOVEFLAG, false, EXT_IMAP4FLAGS, "Sl", 0 },
	{ "reject", C_REJECT, false, EXT_REJECT, "s", 0 },
	{ "ereject", C_EREJECT, false, EXT_EREJECT, "s", 0 },
	{ "vacation", C_VACATION, false, EXT_VACATION, "s", 0 },
	{ "addheader", C_ADDHEADER, false, EXT_EDITHEADER, "ss", 0 },
	{ "deleteheader", C_DELETEHEADER, false, EXT_EDITHEADER, "sL",
	    F_MATCH },
	{ "include", C_INCLUDE, false, EXT_INCLUDE, "s", 0 },
	{ "return", C_RETURN, false, EXT_INCLUDE, "", 0 },
	{ "global", C_GLOBAL, false, EXT_INCLUDE, "l", 0 },
	{ "address", T_ADDRESS, true, -1, "ll", F_MATCH | F_ADDR | F_INDEX },
	{ "header", T_HEADER, true, -1, "ll", F_MATCH | F_INDEX },
	{ "envelope", T_ENVELOPE, true, EXT_ENVELOPE, "ll", F_MATCH | F_ADDR },
	{ "exists", T_EXISTS, true, -1, "l", 0 },
	{ "size", T_SIZE, true, -1, "n", 0 },
	{ "allof", T_ALLOF, true, -1, "", F_TESTS },
	{ "anyof", T_ANYOF, true, -1, "", F_TESTS },
	{ "not", T_NOT, true, -1, "", F_TEST },
	{ "true", T_TRUE, true, -1, "", 0 },
	{ "false", T_FALSE, true, -1, "", 0 },
	{ "string", T_STRING, true, EXT_VARIABLES, "ll", F_MATCH },
	{ "hasflag", T_HASFLAG, true, EXT_IMAP4FLAGS, "Ll", F_MATCH },
	{ "body", T_BODY, true, EXT_BODY, "l", F_MATCH },
	{ "date", T_DATE, true, EXT_DATE, "ssl", F_MATCH | F_INDEX },
	{ "currentdate", T_CURRENTDATE, true, EXT_DATE, "sl", F_MATCH },
	{ "duplicate", T_DUPLICATE, true, EXT_DUPLICATE, "", 0 },
	{ "mailboxexists", T_MAILBOXEXISTS, true, EXT_MAILBOX, "l", 0 },
	{ "spamtest", T_SPAMTEST, true, EXT_SPAMTEST, "s", F_MATCH },
	{ "virustest", T_VIRUSTEST, true, EXT_VIRUSTEST, "s", F_MATCH },
};

/* Tags: name, id, value kind ('s', 'l', 'n' or 0), slot, extension. */
struct tag_spec {
	const char *name;
	enum sv_tag id;
	char kind;
	int slot;
	int ext;
};

static const struct tag_spec tag_specs[] = {
	{ "is", G_IS, 0, -1, -1 },
	{ "contains", G_CONTAINS, 0, -1, -1 },
	{ "matches", G_MATCHES, 0, -1, -1 },
	{ "regex", G_REGEX, 0, -1, EXT_REGEX },
	{ "count", G_COUNT, 's', V_RELOP, EXT_RELATIONAL },
	{ "value", G_VALUE, 's', V_RELOP, EXT_RELATIONAL },
	{ "comparator", G_COMPARATOR, 's', V_COMPARATOR, -1 },
	{ "all", G_ALL, 0, -1, -1 },
	{ "localpart", G_LOCALPART, 0, -1, -1 },
	{ "domain", G_DOMAIN, 0, -1, -1 },
	{ "user", G_USER, 0, -1, EXT_SUBADDRESS },
	{ "detail", G_DETAIL, 0, -1, EXT_SUBADDRESS },
	{ "over", G_OVER, 0, -1, -1 },
	{ "under", G_UNDER, 0, -1, -1 },
	{ "copy", G_COPY, 0, -1, EXT_COPY },
	{ "flags", G_FLAGS, 'l', V_FLAGS, EXT_IMAP4FLAGS },
	{ "create", G_CREATE, 0, -1, EXT_MAILBOX },
	{ "days", G_DAYS, 'n', -1, -1 },
	{ "seconds", G_SECONDS, 'n', -1, -1 },
	{ "subject", G_SUBJECT, 's', V_SUBJECT, -1 },
	{ "from", G_FROM, 's', V_FROM, -1 },
	{ "addresses", G_ADDRESSES, 'l', V_ADDRESSES, -1 },
	{ "mime", G_MIME, 0, -1, -1 },
	{ "handle", G_HANDLE, 's', V_HANDLE, -1 },
	{ "raw", G_RAW, 0, -1, -1 },
	{ "content", G_CONTENT, 'l', V_CONTENT, -1 },
	{ "text", G_TEXT, 0, -1, -1 },
	{ "zone", G_ZONE, 's', V_ZONE, -1 },
	{ "originalzone", G_ORIGINALZONE, 0, -1, -1 },
	{ "index", G_INDEX, 'n', -1, EXT_INDEX },
	{ "last", G_LAST, 0, -1, -1 },
	{ "header", G_HEADER, 's', V_HEADER, -1 },
	{ "uniqueid", G_UNIQUEID, 's', V_UNIQUEID, -1 },
	{ "lower", G_LOWER, 0, -1, -1 },
	{ "upper", G_UPPER, 0, -1, -1 },
	{ "lowerfirst", G_LOWERFIRST, 0, -1, -1 },
	{ "upperfirst", G_UPPERFIRST, 0, -1, -1 },
	{ "quotewildcard", G_QUOTEWILDCARD, 0, -1, -1 },
	{ "quoteregex", G_QUOTEREGEX, 0, -1, EXT_REGEX },
	{ "length", G_LENGTH, 0, -1, -1 },
	{ "percent", G_PERCENT, 0, -1, EXT_SPAMTESTPLUS },
	{ "personal", G_PERSONAL, 0, -1, -1 },
	{ "global", G_GLOBAL, 0, -1, -1 },
	{ "once", G_ONCE, 0, -1, -1 },
	{ "optional", G_OPTIONAL, 0, -1, -1 },
};

/* Whether command id takes tag t (besides the match family). */
static bool
takes_tag(const struct spec *sp, enum sv_tag t)
{
	switch (t) {
	case G_IS: case G_CONTAINS: case G_MATCHES: case G_REGEX:
	case G_COUNT: case G_VALUE: case G_COMPARATOR:
		return (sp->flags & F_MATCH) != 0 &&
		    !((t == G_COUNT || t == G_VALUE) &&
		    sp->id == C_DELETEHEADER);
	case G_ALL: case G_LOCALPART: case G_DOMAIN: case G_USER:
	case G_DETAIL:
		return (sp->flags & F_ADDR) != 0;
	case G_INDEX:
		return (sp->flags & F_INDEX) != 0 || sp->id == C_DELETEHEADER;
	case G_LAST:
		return (sp->flags & F_INDEX) != 0 ||
		    sp->id == C_DELETEHEADER || sp->id == C_ADDHEADER ||
		    sp->id == T_DUPLICATE;
	case G_OVER: case G_UNDER:
		return sp->id == T_SIZE;
	case G_COPY:
		return sp->id == C_REDIRECT || sp->id == C_FILEINTO;
	case G_FLAGS:
		return sp->id == C_KEEP || sp->id == C_FILEINTO;
	case G_CREATE:
		return sp->id == C_FILEINTO;
	case G_SECONDS:
		return sp->id == C_VACATION || sp->id == T_DUPLICATE;
	case G_DAYS: case G_SUBJECT: case G_FROM:
	case G_ADDRESSES: case G_MIME:
		return sp->id == C_VACATION;
	case G_HANDLE:
		return sp->id == C_VACATION || sp->id == T_DUPLICATE;
	case G_RAW: case G_CONTENT: case G_TEXT:
		return sp->id == T_BODY;
	case G_ZONE:
		return sp->id == T_DATE || sp->id == T_CURRENTDATE;
	case G_ORIGINALZONE:
		return sp->id == T_DATE;
	case G_HEADER: case G_UNIQUEID:
		return sp->id == T_DUPLICATE;
	case G_LOWER: case G_UPPER: case G_LOWERFIRST: case G_UPPERFIRST:
	case G_QUOTEWILDCARD: case G_QUOTEREGEX: case G_LENGTH:
		return sp->id == C_SET;
	case G_PERCENT:
		return sp->id == T_SPAMTEST;
	case G_PERSONAL: case G_GLOBAL: case G_ONCE: case G_OPTIONAL:
		return sp->id == C_INCLUDE;
	default:
		return false;
	}
}

/* ---- Parser ------------------------------------------------------------ */

static bool has_ext(struct parser *p, int ext)
{
	return ext < 0 || (p->script->exts & (1ull << ext)) != 0;
}

/* Parses a string list at a '[' or a string. */
static bool
parse_list(struct parser *p, struct raw_arg *a)
{
	size_t cap = 0;

	a->kind = RA_LIST;
	a->line = p->tok_line;
	if (p->tok == TK_STR) {
		a->list.v = sv_alloc(&p->prog->arena, sizeof(struct sv_str));
		a->list.v[0] = make_str(p);
		a->list.n = 1;
		a->is_single = true;
		lex(p);
		return !p->failed;
	}
	lex(p);
	for (;;) {
		if (p->tok != TK_STR) {
			fail(p, p->tok_line, "expected a string in the "
			    "string list");
			return false;
		}
		if (a->list.n == cap) {
			struct sv_str *v;

			cap = cap ? cap * 2 : 4;
			v = sv_alloc(&p->prog->arena, cap * sizeof(*v));
			if (a->list.n > 0)
				memcpy(v, a->list.v, a->list.n * sizeof(*v));
			a->list.v = v;
		}
		a->list.v[a->list.n++] = make_str(p);
		lex(p);
		if (p->tok == TK_COMMA) {
			lex(p);
			continue;
		}
		if (p->tok == TK_RBRACKET) {
			lex(p);
			return !p->failed;
		}
		fail(p, p->tok_line, "expected ',' or ']' in the string list");
		return false;
	}
}

static bool parse_test(struct parser *p, struct sv_node *n);
static bool parse_commands(struct parser *p, struct sv_node **out,
    size_t *n_out, bool is_block);

static const struct spec *
spec_find(const char *name, bool is_test)
{
	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		if (specs[i].is_test == is_test &&
		    strcasecmp(specs[i].name, name) == 0)
			return &specs[i];
	}
	return NULL;
}

static const struct tag_spec *
tag_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(tag_specs); i++) {
		if (strcasecmp(tag_specs[i].name, name) == 0)
			return &tag_specs[i];
	}
	return NULL;
}

static enum sv_rel
rel_parse(const char *s)
{
	static const char *const names[] = { "", "gt", "ge", "lt", "le", "eq",
	    "ne" };

	for (size_t i = 1; i < ARRAY_LEN(names); i++) {
		if (strcasecmp(s, names[i]) == 0)
			return (enum sv_rel)i;
	}
	return REL_NONE;
}

/* Validates the arguments of n against its spec. */
static bool
validate(struct parser *p, const struct spec *sp, struct sv_node *n,
    struct raw_arg *args, size_t nargs)
{
	const char *what = sp->is_test ? "test" : "command";
	size_t i = 0, npos = 0, want_pos = 0, opt_pos = 0;
	struct raw_arg *pos[3];
	bool has_match = false, has_part = false;

	/* tags first */
	for (; i < nargs && args[i].kind == RA_TAG; i++) {
		const struct tag_spec *ts = tag_find(args[i].tag);

		if (ts == NULL || !takes_tag(sp, ts->id)) {
			fail(p, args[i].line, "%s %s: unknown tagged argument "
			    "':%s'", sp->name, what, args[i].tag);
			return false;
		}
		if (!has_ext(p, ts->ext) ||
		    (ts->id == G_LAST && sp->id != C_ADDHEADER &&
		    sp->id != T_DUPLICATE && !has_ext(p, EXT_INDEX)) ||
		    (ts->id == G_SECONDS && sp->id == C_VACATION &&
		    !has_ext(p, EXT_VACATION_SECONDS))) {
			fail(p, args[i].line, "%s %s: tagged argument ':%s' "
			    "needs its extension in require", sp->name, what,
			    args[i].tag);
			return false;
		}
		if (sv_has(n, ts->id)) {
			fail(p, args[i].line, "%s %s: tagged argument ':%s' "
			    "given twice", sp->name, what, args[i].tag);
			return false;
		}
		n->tagmask |= 1ull << ts->id;
		switch (ts->id) {
		case G_IS: case G_CONTAINS: case G_MATCHES: case G_REGEX:
		case G_COUNT: case G_VALUE:
			if (has_match) {
				fail(p, args[i].line, "%s %s: more than one "
				    "match type", sp->name, what);
				return false;
			}
			has_match = true;
			n->match = ts->id;
			break;
		case G_ALL: case G_LOCALPART: case G_DOMAIN: case G_USER:
		case G_DETAIL:
			if (has_part) {
				fail(p, args[i].line, "%s %s: more than one "
				    "address part", sp->name, what);
				return false;
			}
			has_part = true;
			n->part = ts->id;
			break;
		default:
			break;
		}
		if (ts->kind == 0)
			continue;
		if (i + 1 >= nargs || (ts->kind == 'n') !=
		    (args[i + 1].kind == RA_NUM) ||
		    args[i + 1].kind == RA_TAG ||
		    (ts->kind == 's' && !args[i + 1].is_single)) {
			fail(p, args[i].line, "%s %s: ':%s' takes a %s",
			    sp->name, what, args[i].tag, ts->kind == 'n' ?
			    "number" : ts->kind == 's' ? "string" :
			    "string list");
			return false;
		}
		i++;
		if (ts->kind == 'n')
			n->num = args[i].num;
		else
			n->tagval[ts->slot] = args[i].list;
	}
	for (; i < nargs; i++) {
		if (args[i].kind == RA_TAG) {
			fail(p, args[i].line, "%s %s: tagged argument ':%s' "
			    "after a positional argument", sp->name, what,
			    args[i].tag);
			return false;
		}
		if (npos == 3) {
			fail(p, args[i].line, "%s %s: too many arguments",
			    sp->name, what);
			return false;
		}
		pos[npos++] = &args[i];
	}
	for (const char *c = sp->pos; *c != '\0'; c++) {
		if (isupper((unsigned char)*c))
			opt_pos++;
		else
			want_pos++;
	}
	if (npos < want_pos || npos > want_pos + opt_pos) {
		fail(p, n->line, "%s %s: expected %zu argument%s, got %zu",
		    sp->name, what, want_pos, want_pos == 1 ? "" : "s", npos);
		return false;
	}
	{
		/* map positional arguments to the spec: optional leading ones
		 * are present only when all are */
		size_t k = 0;
		bool skip_opt = npos == want_pos;

		for (const char *c = sp->pos; *c != '\0'; c++) {
			char kind = (char)tolower((unsigned char)*c);
			struct raw_arg *a;

			if (isupper((unsigned char)*c) && skip_opt) {
				if (sp->id == C_DELETEHEADER)
					n->pos[n->npos++].n = 0;
				continue;
			}
			a = pos[k++];
			if ((kind == 'n') != (a->kind == RA_NUM) ||
			    (kind == 's' && !a->is_single)) {
				fail(p, a->line, "%s %s: argument %zu must be "
				    "a %s", sp->name, what, k, kind == 'n' ?
				    "number" : kind == 's' ? "string" :
				    "string list");
				return false;
			}
			if (kind == 'n')
				n->num = a->num;
			else
				n->pos[n->npos++] = a->list;
		}
	}
	/* comparator and match type */
	if (sp->flags & F_MATCH) {
		if (n->match == 0)
			n->match = G_IS;
		n->cmp = CMP_CASEMAP;
		if (sv_has(n, G_COMPARATOR)) {
			const char *c = n->tagval[V_COMPARATOR].v[0].s;

			if (strcasecmp(c, "i;octet") == 0) {
				n->cmp = CMP_OCTET;
			} else if (strcasecmp(c, "i;ascii-casemap") == 0) {
				n->cmp = CMP_CASEMAP;
			} else if (strcasecmp(c, "i;ascii-numeric") == 0 &&
			    has_ext(p, EXT_CMP_NUMERIC)) {
				n->cmp = CMP_NUMERIC;
			} else {
				fail(p, n->line, "%s %s: unknown comparator "
				    "'%s'", sp->name, what, c);
				return false;
			}
		}
		if (n->cmp == CMP_NUMERIC && (n->match == G_CONTAINS ||
		    n->match == G_MATCHES || n->match == G_REGEX)) {
			fail(p, n->line, "%s %s: the comparator "
			    "i;ascii-numeric takes no substring match",
			    sp->name, what);
			return false;
		}
		if (n->match == G_COUNT || n->match == G_VALUE) {
			n->rel = (uint8_t)rel_parse(n->tagval[V_RELOP].v[0].s);
			if (n->rel == REL_NONE) {
				fail(p, n->line, "%s %s: invalid relational "
				    "match '%s'", sp->name, what,
				    n->tagval[V_RELOP].v[0].s);
				return false;
			}
		}
		if (n->match == G_REGEX) {
			/* the keys are the last positional list */
			const struct sv_list *keys = &n->pos[n->npos - 1];

			/* constant keys are compiled once, here */
			for (size_t k = 0; k < keys->n; k++) {
				struct sieve_program *prog = p->prog;
				const char *why = NULL;
				void *re;

				if (keys->v[k].has_var)
					continue;
				re = sv_regex_compile(keys->v[k].s,
				    n->cmp == CMP_CASEMAP, &why);
				if (re == NULL) {
					fail(p, n->line, "invalid regex '%.40s': "
					    "%s", keys->v[k].s, why);
					return false;
				}
				prog->regexes = xrealloc(prog->regexes,
				    (prog->nregexes + 1) *
				    sizeof(*prog->regexes));
				prog->regexes[prog->nregexes++] = re;
				keys->v[k].re = re;
			}
		}
	}
	if (sp->flags & F_ADDR && n->part == 0)
		n->part = G_ALL;
	return true;
}

/* Checks what one command or test means beyond its grammar. */
static bool
check_semantics(struct parser *p, struct sv_node *n)
{
	switch (n->id) {
	case T_SIZE:
		if (sv_has(n, G_OVER) == sv_has(n, G_UNDER)) {
			fail(p, n->line, "size test: exactly one of :over or "
			    ":under is needed");
			return false;
		}
		break;
	case C_VACATION:
		if (sv_has(n, G_DAYS) && sv_has(n, G_SECONDS)) {
			fail(p, n->line, "vacation command: :days and "
			    ":seconds are exclusive");
			return false;
		}
		break;
	case T_BODY: {
		int k = sv_has(n, G_RAW) + sv_has(n, G_CONTENT) +
		    sv_has(n, G_TEXT);

		if (k > 1) {
			fail(p, n->line, "body test: more than one body "
			    "transform");
			return false;
		}
		break;
	}
	case T_DATE:
	case T_CURRENTDATE: {
		const struct sv_str *part = &n->pos[n->npos - 2].v[0];

		if (sv_has(n, G_ZONE) && sv_has(n, G_ORIGINALZONE)) {
			fail(p, n->line, "date test: :zone and :originalzone "
			    "are exclusive");
			return false;
		}
		/* an unknown zone or date part is a warning in Pigeonhole:
		 * the zone is ignored, the test is false */
		(void)part;
		break;
	}
	case T_ADDRESS:
		/* RFC 5228 §5.1: only fields that hold addresses; as
		 * Pigeonhole, the known fields that hold none are refused,
		 * unknown ones (X-...) allowed */
		for (size_t i = 0; i < n->pos[0].n; i++) {
			static const char *const not_addr[] = { "subject",
			    "comments", "keywords", "date", "resent-date",
			    "message-id", "resent-message-id", "in-reply-to",
			    "references", "received", "mime-version",
			    "content-type", "content-transfer-encoding",
			    "content-disposition", "content-id",
			    "content-description" };
			const struct sv_str *s = &n->pos[0].v[i];

			for (size_t k = 0; !s->has_var &&
			    k < ARRAY_LEN(not_addr); k++) {
				if (strcasecmp(s->s, not_addr[k]) == 0) {
					fail(p, n->line, "address test: header "
					    "'%s' holds no addresses", s->s);
					return false;
				}
			}
		}
		break;
	case T_ENVELOPE:
		for (size_t i = 0; i < n->pos[0].n; i++) {
			const struct sv_str *s = &n->pos[0].v[i];

			if (!s->has_var && strcasecmp(s->s, "from") != 0 &&
			    strcasecmp(s->s, "to") != 0 &&
			    strcasecmp(s->s, "auth") != 0) {
				fail(p, n->line, "envelope test: envelope part "
				    "'%s' is not supported", s->s);
				return false;
			}
		}
		break;
	case C_REDIRECT:
		if (!n->pos[0].v[0].has_var &&
		    !sieve_is_address_valid(n->pos[0].v[0].s)) {
			fail(p, n->line, "redirect command: specified redirect "
			    "address '%s' is invalid", n->pos[0].v[0].s);
			return false;
		}
		break;
	case C_ADDHEADER:
	case C_DELETEHEADER:
		if (!n->pos[0].v[0].has_var &&
		    !sv_is_field_name(n->pos[0].v[0].s)) {
			fail(p, n->line, "%s command: specified field name "
			    "'%s' is invalid", n->id == C_ADDHEADER ?
			    "addheader" : "deleteheader", n->pos[0].v[0].s);
			return false;
		}
		break;
	case T_DUPLICATE:
		if (sv_has(n, G_HEADER) && sv_has(n, G_UNIQUEID)) {
			fail(p, n->line, "duplicate test: :header and "
			    ":uniqueid are exclusive");
			return false;
		}
		break;
	case T_HASFLAG:
	case C_SETFLAG: case C_ADDFLAG: case C_REMOVEFLAG:
		if (n->npos == 2 && !has_ext(p, EXT_VARIABLES)) {
			fail(p, n->line, "a variable name needs variables "
			    "in require");
			return false;
		}
		break;
	case T_SPAMTEST:
		break;
	case C_INCLUDE:
		if (sv_has(n, G_PERSONAL) && sv_has(n, G_GLOBAL)) {
			fail(p, n->line, "include command: :personal and "
			    ":global are exclusive");
			return false;
		}
		break;
	default:
		break;
	}
	if ((sv_has(n, G_LAST) && !sv_has(n, G_INDEX)) &&
	    n->id != C_ADDHEADER && n->id != T_DUPLICATE) {
		fail(p, n->line, "tagged argument :last needs :index");
		return false;
	}
	if (n->match == G_COUNT && n->id == T_BODY) {
		/* allowed: counts the parts */
	}
	return true;
}

static bool
is_identifier(const char *s, size_t n)
{
	if (n == 0 || !is_ident_start(s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (!is_ident_char(s[i]))
			return false;
	}
	return true;
}

static bool
is_variable_name(const struct sv_str *s)
{
	/* namespaces are not supported: a plain identifier only */
	return is_identifier(s->s, s->len);
}

static struct sv_script *compile_script(struct parser *outer,
    const char *s, size_t len, unsigned include_depth);

/* Takes in an included script (RFC 6609) when compiling. */
static bool
resolve_include(struct parser *p, struct sv_node *n)
{
	const struct sv_str *name = &n->pos[0].v[0];
	enum sieve_location loc = sv_has(n, G_GLOBAL) ? SIEVE_GLOBAL :
	    SIEVE_PERSONAL;
	char *text = NULL;
	size_t len = 0;

	if (name->has_var) {
		fail(p, n->line, "include command: the script name must be "
		    "a constant string");
		return false;
	}
	if (name->len == 0 || memchr(name->s, '/', name->len) != NULL) {
		fail(p, n->line, "include command: invalid script name '%s'",
		    name->s);
		return false;
	}
	if (p->include_depth + 1 > SIEVE_MAX_INCLUDE_DEPTH ||
	    p->prog->nscripts >= SIEVE_MAX_INCLUDES) {
		fail(p, n->line, "include command: too many nested includes");
		return false;
	}
	if (p->opts != NULL && p->opts->include_load != NULL)
		text = p->opts->include_load(p->opts->ctx, loc, name->s, &len);
	if (text == NULL) {
		if (sv_has(n, G_OPTIONAL))
			return true;
		fail(p, n->line, "include command: included %s script '%s' "
		    "not found", loc == SIEVE_GLOBAL ? "global" : "personal",
		    name->s);
		return false;
	}
	n->inc = compile_script(p, text, len, p->include_depth + 1);
	free(text);
	if (n->inc == NULL)
		return false;
	n->inc->is_once = sv_has(n, G_ONCE);
	return true;
}

/* Parses one command at an identifier; *n is filled. */
static bool
parse_command(struct parser *p, struct sv_node *n)
{
	const struct spec *sp;
	struct raw_arg args[16];
	size_t nargs = 0;
	char name[64];

	if (p->tok != TK_IDENT) {
		fail(p, p->tok_line, "expected a command");
		return false;
	}
	snprintf(name, sizeof(name), "%s", p->text);
	n->line = p->tok_line;
	sp = spec_find(name, false);
	if (sp == NULL && spec_find(name, true) != NULL) {
		fail(p, n->line, "'%s' is a test, not a command", name);
		return false;
	}
	if (sp == NULL || !has_ext(p, sp->ext)) {
		fail(p, n->line, "unknown command '%s'", name);
		return false;
	}
	n->id = (uint16_t)sp->id;
	if (sp->id == C_REQUIRE && p->seen_other) {
		fail(p, n->line, "require command: only allowed at the top of "
		    "the script");
		return false;
	}
	if ((sp->id == C_ELSIF || sp->id == C_ELSE) && !p->after_if) {
		fail(p, n->line, "%s without a preceding if", name);
		return false;
	}
	lex(p);
	while (p->tok == TK_TAG || p->tok == TK_NUM || p->tok == TK_STR ||
	    p->tok == TK_LBRACKET) {
		struct raw_arg *a;

		if (nargs == ARRAY_LEN(args)) {
			fail(p, p->tok_line, "too many arguments");
			return false;
		}
		a = &args[nargs++];
		memset(a, 0, sizeof(*a));
		a->line = p->tok_line;
		if (p->tok == TK_TAG) {
			a->kind = RA_TAG;
			a->tag = sv_strndup(&p->prog->arena, p->text,
			    p->text_len);
			lex(p);
		} else if (p->tok == TK_NUM) {
			a->kind = RA_NUM;
			a->num = p->num;
			lex(p);
		} else if (!parse_list(p, a)) {
			return false;
		}
	}
	if (p->failed)
		return false;
	if (sp->flags & F_TEST) {
		if (++p->depth > SIEVE_MAX_NESTING) {
			fail(p, p->tok_line, "nesting too deep");
			return false;
		}
		n->kids = sv_alloc(&p->prog->arena, sizeof(*n->kids));
		n->nkids = 1;
		if (!parse_test(p, n->kids))
			return false;
		p->depth--;
	}
	if (!validate(p, sp, n, args, nargs) || !check_semantics(p, n))
		return false;
	if (sp->flags & F_BLOCK) {
		if (p->tok != TK_LBRACE) {
			fail(p, p->tok_line, "%s command: expected a block",
			    name);
			return false;
		}
		if (++p->depth > SIEVE_MAX_NESTING) {
			fail(p, p->tok_line, "nesting too deep");
			return false;
		}
		lex(p);
		if (!parse_commands(p, &n->block, &n->nblock, true))
			return false;
		p->depth--;
		lex(p);		/* the '}' */
	} else {
		if (p->tok == TK_LBRACE) {
			fail(p, p->tok_line, "%s command: takes no block",
			    name);
			return false;
		}
		if (p->tok != TK_SEMI) {
			fail(p, p->tok_line, "%s command: expected ';'", name);
			return false;
		}
		lex(p);
	}
	/* commands with their checks against the script */
	switch (sp->id) {
	case C_REQUIRE:
		for (size_t i = 0; i < n->pos[0].n; i++) {
			const char *e = n->pos[0].v[i].s;
			size_t k;

			for (k = 0; k < ARRAY_LEN(ext_names); k++) {
				if (ext_names[k] != NULL &&
				    strcasecmp(ext_names[k], e) == 0)
					break;
			}
			if (k == ARRAY_LEN(ext_names)) {
				fail(p, n->line, "require command: unknown "
				    "Sieve capability '%s'", e);
				return false;
			}
			p->script->exts |= 1ull << k;
			if (k == EXT_VACATION_SECONDS)
				p->script->exts |= 1ull << EXT_VACATION;
			if (k == EXT_SPAMTESTPLUS)
				p->script->exts |= 1ull << EXT_SPAMTEST;
		}
		break;
	case C_SET:
		if (!is_variable_name(&n->pos[0].v[0])) {
			fail(p, n->line, "set command: invalid variable name "
			    "'%s'", n->pos[0].v[0].s);
			return false;
		}
		break;
	case C_GLOBAL:
		for (size_t i = 0; i < n->pos[0].n; i++) {
			if (!is_variable_name(&n->pos[0].v[i])) {
				fail(p, n->line, "global command: invalid "
				    "variable name '%s'", n->pos[0].v[i].s);
				return false;
			}
		}
		if (!has_ext(p, EXT_VARIABLES)) {
			fail(p, n->line, "global command: needs variables in "
			    "require");
			return false;
		}
		break;
	case C_INCLUDE:
		if (!resolve_include(p, n))
			return false;
		break;
	default:
		break;
	}
	p->after_if = sp->id == C_IF || sp->id == C_ELSIF;
	if (sp->id != C_REQUIRE)
		p->seen_other = true;
	return true;
}

static bool
parse_test(struct parser *p, struct sv_node *n)
{
	const struct spec *sp;
	struct raw_arg args[16];
	size_t nargs = 0;
	char name[64];

	if (p->tok != TK_IDENT) {
		fail(p, p->tok_line, "expected a test");
		return false;
	}
	snprintf(name, sizeof(name), "%s", p->text);
	n->line = p->tok_line;
	sp = spec_find(name, true);
	if (sp == NULL || !has_ext(p, sp->ext)) {
		fail(p, n->line, "unknown test '%s'", name);
		return false;
	}
	n->id = (uint16_t)sp->id;
	lex(p);
	while (p->tok == TK_TAG || p->tok == TK_NUM || p->tok == TK_STR ||
	    p->tok == TK_LBRACKET) {
		struct raw_arg *a;

		if (nargs == ARRAY_LEN(args)) {
			fail(p, p->tok_line, "too many arguments");
			return false;
		}
		a = &args[nargs++];
		memset(a, 0, sizeof(*a));
		a->line = p->tok_line;
		if (p->tok == TK_TAG) {
			a->kind = RA_TAG;
			a->tag = sv_strndup(&p->prog->arena, p->text,
			    p->text_len);
			lex(p);
		} else if (p->tok == TK_NUM) {
			a->kind = RA_NUM;
			a->num = p->num;
			lex(p);
		} else if (!parse_list(p, a)) {
			return false;
		}
	}
	if (p->failed)
		return false;
	if (++p->depth > SIEVE_MAX_NESTING) {
		fail(p, n->line, "nesting too deep");
		return false;
	}
	if (sp->flags & F_TEST) {
		n->kids = sv_alloc(&p->prog->arena, sizeof(*n->kids));
		n->nkids = 1;
		if (!parse_test(p, n->kids))
			return false;
	} else if (sp->flags & F_TESTS) {
		size_t cap = 0;

		if (p->tok != TK_LPAREN) {
			fail(p, p->tok_line, "%s test: expected a test list",
			    name);
			return false;
		}
		lex(p);
		for (;;) {
			if (n->nkids == cap) {
				struct sv_node *k;

				cap = cap ? cap * 2 : 4;
				k = sv_alloc(&p->prog->arena,
				    cap * sizeof(*k));
				if (n->nkids > 0)
					memcpy(k, n->kids,
					    n->nkids * sizeof(*k));
				n->kids = k;
			}
			if (!parse_test(p, &n->kids[n->nkids++]))
				return false;
			if (p->tok == TK_COMMA) {
				lex(p);
				continue;
			}
			if (p->tok == TK_RPAREN) {
				lex(p);
				break;
			}
			fail(p, p->tok_line, "%s test: expected ',' or ')'",
			    name);
			return false;
		}
	}
	p->depth--;
	return validate(p, sp, n, args, nargs) && check_semantics(p, n);
}

static bool
parse_commands(struct parser *p, struct sv_node **out, size_t *n_out,
    bool is_block)
{
	size_t cap = 0, n = 0;
	struct sv_node *v = NULL;

	p->after_if = false;
	for (;;) {
		if (p->failed)
			return false;
		if (p->tok == TK_EOF) {
			if (is_block) {
				fail(p, p->tok_line, "missing '}' at the end "
				    "of the script");
				return false;
			}
			break;
		}
		if (p->tok == TK_RBRACE) {
			if (!is_block) {
				fail(p, p->tok_line, "unexpected '}'");
				return false;
			}
			break;
		}
		if (p->tok == TK_ERROR)
			return false;
		if (n == cap) {
			struct sv_node *nv;

			cap = cap ? cap * 2 : 8;
			nv = sv_alloc(&p->prog->arena, cap * sizeof(*nv));
			if (n > 0)
				memcpy(nv, v, n * sizeof(*nv));
			v = nv;
		}
		if (!parse_command(p, &v[n]))
			return false;
		n++;
		if (p->prog->arena.used > SIEVE_MAX_PROGRAM) {
			fail(p, p->tok_line, "compiled program too large");
			return false;
		}
	}
	p->after_if = false;
	*out = v;
	*n_out = n;
	return true;
}

static struct sv_script *
compile_script(struct parser *outer, const char *s, size_t len,
    unsigned include_depth)
{
	struct parser p;
	struct sv_script *sc;

	memset(&p, 0, sizeof(p));
	p.s = s;
	p.len = len;
	p.line = 1;
	p.prog = outer->prog;
	p.opts = outer->opts;
	p.err = outer->err;
	p.include_depth = include_depth;
	sc = sv_alloc(&p.prog->arena, sizeof(*sc));
	sc->index = (unsigned)p.prog->nscripts++;
	p.script = sc;
	if (len > SIEVE_MAX_SCRIPT) {
		fail(&p, 0, "script too large (%zu bytes, at most %u)", len,
		    SIEVE_MAX_SCRIPT);
	} else {
		lex(&p);
		parse_commands(&p, &sc->cmds, &sc->ncmds, false);
	}
	free(p.text);
	if (p.failed) {
		outer->failed = true;
		if (include_depth > 0 && strncmp(p.err->msg, "included", 8)
		    != 0) {
			char tmp[sizeof(p.err->msg) + 32];

			snprintf(tmp, sizeof(tmp), "included script: %s",
			    p.err->msg);
			snprintf(p.err->msg, sizeof(p.err->msg), "%.*s",
			    (int)sizeof(p.err->msg) - 1, tmp);
		}
		return NULL;
	}
	return sc;
}

struct sieve_program *
sieve_compile(const char *script, size_t len,
    const struct sieve_compile_opts *opts, struct sieve_error *err)
{
	struct sieve_program *prog = xcalloc(1, sizeof(*prog));
	struct parser outer;

	memset(err, 0, sizeof(*err));
	memset(&outer, 0, sizeof(outer));
	outer.prog = prog;
	outer.opts = opts;
	outer.err = err;
	prog->main = compile_script(&outer, script != NULL ? script : "",
	    script != NULL ? len : 0, 0);
	if (prog->main == NULL) {
		sieve_program_free(&prog);
		return NULL;
	}
	return prog;
}

void
sieve_program_free(struct sieve_program **p)
{
	if (*p == NULL)
		return;
	for (size_t i = 0; i < (*p)->nregexes; i++)
		sv_regex_free((*p)->regexes[i]);
	free((*p)->regexes);
	sv_arena_free(&(*p)->arena);
	free(*p);
	*p = NULL;
}

size_t
sieve_program_size(const struct sieve_program *p)
{
	return p->arena.used;
}

void
sieve_error_format(const struct sieve_error *err, char *out, size_t size)
{
	if (err->line > 0)
		snprintf(out, size, "line %u: %s", err->line, err->msg);
	else
		snprintf(out, size, "%s", err->msg);
}
