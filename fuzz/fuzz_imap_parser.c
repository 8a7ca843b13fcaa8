/*
 * libFuzzer harness for imap_parser. Byte 0 of an input chooses the limits
 * (line_max, literal_max, literal_plus_max, args_max, literals_max) and
 * whether UTF-8 is enabled; byte 1 seeds the sizes of the feeds, and its
 * low bit gives ID lines three times line_max (id_line_max, as before
 * login); the rest is the client's stream. It is parsed twice, as a
 * session would: once with as much as the buf holds per read, once in
 * reads of 0 to 16 bytes (and now and then a full buf), compacting after
 * each read and answering continuation requests. After a command named IDLE or AUTHENTICATE one
 * plain line is read with imap_parser_read_line(), as those states do.
 * Literals of SPOOL_MIN bytes or more of a command named APPEND are spooled
 * to a memfd, as the session spools them to a file; for REPLACE the spool
 * fails (the bytes are dropped, the argument says why).
 *
 * Checked: no crash, leak or undefined behaviour; the two readings give
 * the same commands, errors, continuations and lines; a command has a valid
 * tag, an uppercase name, and a tree within the depth, argument, literal
 * and size limits, with no NUL outside literal8 (spooled literals' files
 * hold exactly their bytes); the memory of a command,
 * finished or not, stays within a bound set by the limits alone; a buf
 * always has room after compaction. Every atom also goes through
 * imap_seqset_parse() (then resolve and membership) and
 * imap_fetch_section_parse(), whose results are checked for normal form;
 * so does the raw start of the input.
 *
 * Build with "bash fuzz/build.sh fuzz_imap_parser", which reads:
 *	fuzz-sources: src/imap/imap_parser.c
 *	fuzz-sources: src/imap/imap_parser_seqset.c
 *	fuzz-sources: src/imap/imap_parser_section.c
 * or by hand, with small arena sizes so that short inputs also reach the
 * paths of big literals and long lists:
 *
 *	clang -std=c17 -g -O1 -D_GNU_SOURCE -Isrc \
 *	    -DIMAP_PARSER_CHUNK_FIRST=64 -DIMAP_PARSER_CHUNK_GROW_MAX=256 \
 *	    -DIMAP_PARSER_LITERAL_FIRST=8 \
 *	    -fsanitize=fuzzer,address,undefined \
 *	    -fno-sanitize-recover=undefined fuzz/fuzz_imap_parser.c \
 *	    src/imap/imap_parser*.c src/lib/buf.c src/lib/parse.c \
 *	    src/lib/util.c -o build-fuzz/fuzz_imap_parser
 *	build-fuzz/fuzz_imap_parser -max_total_time=180 \
 *	    build-fuzz/corpus/fuzz_imap_parser
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap/imap_parser.h"
#include "lib/buf.h"
#include "lib/parse.h"

/* Literals from this size on are spooled (for APPEND). */
#define SPOOL_MIN 8

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_imap_parser: invariant broken: %s\n",
		    what);
		abort();
	}
}

/* ---- The log both readings must agree on ------------------------------ */

struct log {
	char *s;
	size_t len, size;
};

static void
log_put(struct log *l, const void *p, size_t n)
{
	if (l->len + n > l->size) {
		l->size = (l->len + n) * 2 + 64;
		l->s = realloc(l->s, l->size);
		check(l->s != NULL, "memory");
	}
	memcpy(l->s + l->len, p, n);
	l->len += n;
}

static void
log_str(struct log *l, const char *s)
{
	log_put(l, s, strlen(s));
}

static void
log_bytes(struct log *l, const char *p, size_t n)
{
	char head[32];

	snprintf(head, sizeof(head), "%zu:", n);
	log_str(l, head);
	log_put(l, p, n);
}

/* ---- What a command promises ------------------------------------------ */

struct limits {
	size_t line_max, id_line_max, literal_max, literal_plus_max, args_max;
	size_t literals_max;
	bool is_utf8;
};

struct count {
	size_t nodes, literals;
	uint64_t literal_bytes;
};

static void
check_seqset(const char *atom)
{
	struct imap_seqset set;
	size_t i;

	if (imap_seqset_parse(atom, 64, &set) < 0) {
		check(set.ranges == NULL && set.n == 0, "seqset cleared");
		return;
	}
	check(!set.is_saved || (set.n == 0 && !set.has_star), "$ alone");
	for (i = 0; i < set.n; i++) {
		check(set.ranges[i].first >= 1, "seqset from 1");
		check(set.ranges[i].first <= set.ranges[i].last,
		    "seqset range in order");
		if (i > 0)
			check(set.ranges[i - 1].last < UINT32_MAX &&
			    set.ranges[i - 1].last + 1 < set.ranges[i].first,
			    "seqset sorted, disjoint, not adjacent");
	}
	imap_seqset_resolve(&set, (uint32_t)(strlen(atom) % 4));
	check(!set.has_star, "resolved");
	for (i = 0; i < set.n; i++) {
		check(set.ranges[i].first >= 1 &&
		    set.ranges[i].first <= set.ranges[i].last,
		    "resolved range");
		if (i > 0)
			check(set.ranges[i - 1].last + 1 < set.ranges[i].first,
			    "resolved sorted");
		check(is_imap_seqset_member(&set, set.ranges[i].first) &&
		    is_imap_seqset_member(&set, set.ranges[i].last),
		    "range ends are members");
		if (set.ranges[i].first > 1)
			check(!is_imap_seqset_member(&set,
			    set.ranges[i].first - 1), "gap before a range");
	}
	imap_seqset_deinit(&set);
}

static void
check_section(const char *atom)
{
	struct imap_fetch_section s;
	size_t i;

	if (imap_fetch_section_parse(atom, &s) < 0) {
		check(s.fields == NULL && s.nparts == 0, "section cleared");
		return;
	}
	check(strchr(atom, '[') != NULL, "a section has brackets");
	check(s.nparts <= IMAP_SECTION_PARTS_MAX, "parts bounded");
	for (i = 0; i < s.nparts; i++)
		check(s.parts[i] >= 1, "part numbers from 1");
	check((s.nfields > 0) == (s.text == IMAP_SECTION_HEADER_FIELDS ||
	    s.text == IMAP_SECTION_HEADER_FIELDS_NOT), "fields iff a list");
	check(s.nfields <= IMAP_SECTION_FIELDS_MAX, "fields bounded");
	for (i = 0; i < s.nfields; i++)
		check(strlen(s.fields[i]) < strlen(atom), "field inside");
	check(s.text != IMAP_SECTION_MIME || s.nparts > 0, "MIME of a part");
	check(s.kind < IMAP_FETCH_BINARY || s.text == IMAP_SECTION_ALL,
	    "BINARY takes no text");
	check(!s.has_partial || (s.partial_count >= 1 &&
	    s.partial_count <= INT64_MAX && s.partial_offset <= INT64_MAX),
	    "partial in range");
	check(!s.has_partial || s.kind != IMAP_FETCH_BINARY_SIZE,
	    "no partial for BINARY.SIZE");
	imap_fetch_section_deinit(&s);
}

static void
check_arg(const struct imap_arg *a, size_t depth, struct count *c,
    struct log *l)
{
	const char *str;
	size_t len, i;
	uint64_t n64;
	uint32_t n32;

	check(depth <= IMAP_PARSER_DEPTH_MAX, "depth bounded");
	c->nodes++;
	switch (a->kind) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
	case IMAP_ARG_QUOTED:
		check(a->str != NULL && strlen(a->str) == a->len,
		    "string without NUL");
		check(a->kind == IMAP_ARG_QUOTED || a->len > 0,
		    "atoms are not empty");
		log_str(l, a->kind == IMAP_ARG_QUOTED ? "q" :
		    a->kind == IMAP_ARG_NIL ? "n" : "a");
		log_bytes(l, a->str, a->len);
		if (a->kind == IMAP_ARG_ATOM) {
			/* Controls may only sit in a section's quoted
			 * strings; never a line end. */
			check(strpbrk(a->str, "\r\n") == NULL &&
			    (strchr(a->str, '[') != NULL ||
			    strpbrk(a->str, " \t\x01\x7f") == NULL),
			    "atom characters");
			check_seqset(a->str);
			check_section(a->str);
		}
		break;
	case IMAP_ARG_LITERAL:
	case IMAP_ARG_LITERAL8:
		if (a->is_spooled) {
			struct stat st;
			char *data;

			check(a->str != NULL && a->str[0] == '\0' &&
			    a->len >= SPOOL_MIN, "spooled literal shape");
			if (a->fd < 0) {
				check(a->spool_errno == 28, "failed spool");
				c->literals++;
				c->literal_bytes += a->len;
				log_str(l, "f");
				break;
			}
			/* The command's literals share one file. */
			check(fstat(a->fd, &st) == 0 &&
			    (uint64_t)st.st_size >= a->spool_off + a->len,
			    "spool size");
			data = malloc(a->len + 1);
			check(data != NULL, "memory");
			check(pread(a->fd, data, a->len, (off_t)a->spool_off) ==
			    (ssize_t)a->len, "spool read");
			check(a->kind == IMAP_ARG_LITERAL8 ||
			    memchr(data, '\0', a->len) == NULL,
			    "NUL only in literal8");
			check(!imap_arg_astring(a, &str, &len) &&
			    !imap_arg_nstring(a, &str, &len),
			    "spooled is no string");
			c->literals++;
			c->literal_bytes += a->len;
			log_str(l, "s");
			log_bytes(l, data, a->len);
			free(data);
			break;
		}
		check(a->str != NULL && a->str[a->len] == '\0',
		    "literal terminated");
		check(a->kind == IMAP_ARG_LITERAL8 ||
		    memchr(a->str, '\0', a->len) == NULL,
		    "NUL only in literal8");
		c->literals++;
		c->literal_bytes += a->len;
		log_str(l, a->kind == IMAP_ARG_LITERAL ? "l" : "8");
		log_bytes(l, a->str, a->len);
		break;
	case IMAP_ARG_LIST:
		check(a->str == NULL && (a->len == 0) == (a->list == NULL),
		    "list shape");
		log_str(l, "(");
		for (i = 0; i < a->len; i++)
			check_arg(&a->list[i], depth + 1, c, l);
		log_str(l, ")");
		break;
	default:
		check(false, "known kind");
	}
	if (imap_arg_number64(a, &n64)) {
		check(a->kind == IMAP_ARG_ATOM && n64 <= INT64_MAX &&
		    strspn(a->str, "0123456789") == a->len, "number64");
		check(imap_arg_number(a, &n32) == (n64 <= UINT32_MAX) &&
		    (n64 > UINT32_MAX || n32 == n64), "number");
	}
	check(is_imap_arg_atom(a, "NIL") == (a->kind == IMAP_ARG_NIL),
	    "NIL");
	if (imap_arg_astring(a, &str, &len))
		check(str == a->str && len == a->len &&
		    a->kind != IMAP_ARG_LITERAL8 && a->kind != IMAP_ARG_LIST,
		    "astring");
	if (imap_arg_nstring(a, &str, &len))
		check(a->kind == IMAP_ARG_NIL ? str == NULL : str == a->str,
		    "nstring");
}

/* A bound on a command's memory from the limits alone: its line bytes
 * (strings, at most twice over with alignment and chunk slack), its nodes
 * (link, array copy, padding), its literals and the list levels. */
static size_t
mem_bound(const struct limits *lim)
{
	size_t line = lim->id_line_max > lim->line_max ? lim->id_line_max :
	    lim->line_max;

	return 4 * line + lim->args_max * 256 + lim->literal_max +
	    lim->literals_max * 128 + 32768;
}

static void
check_cmd(const struct imap_cmd *cmd, const struct limits *lim,
    struct log *l)
{
	struct count c = { 0, 0, 0 };
	size_t i;

	check(cmd->tag != NULL && cmd->tag[0] != '\0', "tag");
	for (i = 0; cmd->tag[i] != '\0'; i++)
		check(cmd->tag[i] > 0x20 && cmd->tag[i] < 0x7f &&
		    strchr("(){%*\"\\+", cmd->tag[i]) == NULL, "tag chars");
	check(cmd->name != NULL && cmd->name[0] != '\0', "name");
	for (i = 0; cmd->name[i] != '\0'; i++)
		check(cmd->name[i] > 0x20 && cmd->name[i] < 0x7f &&
		    (cmd->name[i] < 'a' || cmd->name[i] > 'z'),
		    "name uppercase");
	check((cmd->nargs == 0) == (cmd->args == NULL), "args shape");
	log_str(l, "D ");
	log_str(l, cmd->tag);
	log_str(l, cmd->is_uid ? " UID " : " ");
	log_str(l, cmd->name);
	for (i = 0; i < cmd->nargs; i++) {
		log_str(l, " ");
		check_arg(&cmd->args[i], 0, &c, l);
	}
	log_str(l, "\n");
	check(c.nodes <= lim->args_max, "args bounded");
	check(c.literals <= lim->literals_max, "literals bounded");
	check(c.literal_bytes <= lim->literal_max, "literal bytes bounded");
	check(cmd->mem_size <= mem_bound(lim), "memory bounded");
}

/* ---- One reading ------------------------------------------------------ */

static int
spool_open(void *arg, const char *name, int *errno_out)
{
	int fd;

	(void)arg;
	if (strcmp(name, "REPLACE") == 0) {
		*errno_out = 28;	/* ENOSPC */
		return -1;
	}
	if (strcmp(name, "APPEND") != 0)
		return -1;
	fd = memfd_create("spool", MFD_CLOEXEC);
	check(fd >= 0, "memfd");
	return fd;
}

static bool
is_line_state(const struct imap_cmd *cmd)
{
	return strcmp(cmd->name, "IDLE") == 0 ||
	    strcmp(cmd->name, "AUTHENTICATE") == 0;
}

/* Reads the stream with reads of the sizes rng gives (0: as much as the
 * buf holds). */
static void
reading(const uint8_t *data, size_t size, const struct limits *lim,
    uint32_t rng, struct log *l)
{
	struct buf b;
	struct imap_parser p;
	size_t pos = 0;
	bool is_line = false, is_closed = false;

	buf_init(&b, (lim->id_line_max > lim->line_max ? lim->id_line_max :
	    lim->line_max) + 64);
	imap_parser_init(&p, lim->line_max, lim->literal_max);
	p.id_line_max = lim->id_line_max;
	p.literal_plus_max = lim->literal_plus_max;
	p.args_max = lim->args_max;
	p.literals_max = lim->literals_max;
	p.is_utf8 = lim->is_utf8;
	p.spool_min = SPOOL_MIN;
	p.spool_open = spool_open;
	for (;;) {
		size_t n = buf_room(&b);

		if (rng != 0) {
			rng = rng * 1103515245u + 12345u;
			if ((rng >> 16) % 8 != 0 && (rng >> 8) % 17 < n)
				n = (rng >> 8) % 17;
		}
		if (n > size - pos)
			n = size - pos;
		check(buf_append(&b, data + pos, n) == 0, "append fits");
		pos += n;
		for (;;) {
			struct imap_cmd *cmd = NULL;
			bool cont = false;
			enum parse_rc rc;

			if (is_line) {
				const char *line = NULL;
				size_t len = 0;

				rc = imap_parser_read_line(&p, &b, &line,
				    &len);
				if (rc == PARSE_DONE) {
					check(len < lim->line_max &&
					    line >= b.data &&
					    line + len <= b.data + b.len &&
					    memchr(line, '\n', len) == NULL,
					    "plain line");
					log_str(l, "L ");
					log_bytes(l, line, len);
					log_str(l, "\n");
					is_line = false;
					continue;
				}
			} else {
				rc = imap_parser_feed(&p, &b, &cmd, &cont);
			}
			check(p.off <= b.len, "offset inside the buf");
			if (p.cmd != NULL)
				check(p.cmd->mem_size <= mem_bound(lim),
				    "partial command memory bounded");
			if (cont) {
				check(rc == PARSE_MORE, "continuation: more");
				log_str(l, "C\n");
				continue;
			}
			if (rc == PARSE_MORE) {
				check(cmd == NULL, "no command with more");
				break;
			}
			if (rc == PARSE_ERROR) {
				check(cmd == NULL && p.error_text != NULL,
				    "error text");
				log_str(l, p.is_fatal ? "F " : "E ");
				log_str(l, p.error_tag ? p.error_tag : "*");
				log_str(l, " ");
				log_str(l, p.error_text);
				log_str(l, "\n");
				/* A line over line_max: the state stays. */
				check(!is_line || !p.is_fatal || p.state ==
				    IMAP_PARSER_CLOSED, "line errors");
				if (p.is_fatal) {
					is_closed = true;
					break;
				}
				continue;
			}
			check(rc == PARSE_DONE && cmd != NULL, "command");
			check_cmd(cmd, lim, l);
			is_line = is_line_state(cmd);
			imap_cmd_free(&cmd);
			check(cmd == NULL, "free clears");
		}
		imap_parser_compact(&p, &b);
		check(p.off == 0, "compact resets the offset");
		if (pos == size || is_closed)
			break;
		check(buf_room(&b) > 0, "room after compact");
	}
	imap_parser_deinit(&p);
	buf_deinit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t line_maxes[] = { 24, 100, 512, 4096 };
	static const size_t literal_maxes[] = { 8, 64, 1024, 70000 };
	struct limits lim;
	struct log whole = { NULL, 0, 0 }, pieces = { NULL, 0, 0 };
	char raw[256];
	size_t n;

	if (size < 2)
		return 0;
	lim.is_utf8 = data[0] & 1;
	lim.line_max = line_maxes[(data[0] >> 1) & 3];
	lim.id_line_max = (data[1] & 1) ? 3 * lim.line_max : 0;
	lim.literal_max = literal_maxes[(data[0] >> 3) & 3];
	lim.literal_plus_max = (data[0] & 0x20) && lim.literal_max > 16 ?
	    16 : lim.literal_max;
	lim.args_max = (data[0] & 0x40) ? 8 : IMAP_PARSER_ARGS_MAX;
	lim.literals_max = (data[0] & 0x80) ? 2 : IMAP_PARSER_LITERALS_MAX;

	reading(data + 2, size - 2, &lim, 0, &whole);
	reading(data + 2, size - 2, &lim, data[1] * 2654435761u + 1, &pieces);
	check(whole.len == pieces.len && (whole.len == 0 ||
	    memcmp(whole.s, pieces.s, whole.len) == 0),
	    "same result however the input is split");
	free(whole.s);
	free(pieces.s);

	/* The helpers on their own, on the raw start of the input. */
	n = size - 2 < sizeof(raw) - 1 ? size - 2 : sizeof(raw) - 1;
	memcpy(raw, data + 2, n);
	raw[n] = '\0';
	check_seqset(raw);
	check_section(raw);
	return 0;
}
