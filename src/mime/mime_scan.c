#include "mime/mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/*
 * Why a scanner of our own: IMAP names parts by byte ranges of the raw
 * message (BODY[1.2], BODY[1.MIME], BODY[2.HEADER]) and reports their sizes
 * and line counts, so every offset must be exact for CRLF and bare-LF mail
 * alike, and must agree with what the structure reports. GMime's tree
 * records no reliable offsets and repairs broken mail its own way. The
 * scanner below reads each line once, follows RFC 2046 §5.1.1 for
 * boundaries, and keeps its recursion, its part count and the header bytes
 * it interprets within the MIME_MAX_* limits.
 */

/* Where a boundary line (or the end of the data) was found. */
struct hit {
	size_t pos;	/* start of the boundary line, or len */
	size_t next;	/* first byte after that line */
	int level;	/* index into ctx->bounds; -1 at the end of data */
	bool is_close;	/* "--boundary--" */
};

static size_t
next_line(const struct mime_ctx *ctx, size_t p)
{
	const char *lf = memchr(ctx->data + p, '\n', ctx->len - p);

	return lf != NULL ? (size_t)(lf - ctx->data) + 1 : ctx->len;
}

static void
hit_end(const struct mime_ctx *ctx, struct hit *h)
{
	h->pos = h->next = ctx->len;
	h->level = -1;
	h->is_close = false;
}

/* Tells whether the line at p is "--" and the boundary of an open
 * multipart, innermost first, followed by "--", white space or the line
 * end; trailing garbage after white space is tolerated as RFC 2046
 * §5.1.1 allows transport padding. */
static bool
is_boundary_line(const struct mime_ctx *ctx, size_t p, struct hit *h)
{
	const char *d = ctx->data;
	size_t avail = ctx->len - p, i;

	if (avail < 2 || d[p] != '-' || d[p + 1] != '-')
		return false;
	for (i = ctx->nbounds; i-- > 0;) {
		const struct mime_bound *b = &ctx->bounds[i];
		size_t q = p + 2 + b->len;
		bool is_close = false;

		if (avail - 2 < b->len || memcmp(d + p + 2, b->s, b->len) != 0)
			continue;
		if (ctx->len - q >= 2 && d[q] == '-' && d[q + 1] == '-')
			is_close = true;
		else if (q < ctx->len && d[q] != '\r' && d[q] != '\n' &&
		    d[q] != ' ' && d[q] != '\t')
			continue;
		h->pos = p;
		h->next = next_line(ctx, p);
		h->level = (int)i;
		h->is_close = is_close;
		return true;
	}
	return false;
}

/* Finds the first boundary line at or after the line start from. */
static void
find_boundary(const struct mime_ctx *ctx, size_t from, struct hit *h)
{
	size_t p = from;

	if (ctx->nbounds > 0) {
		while (p < ctx->len) {
			if (ctx->data[p] == '-' && is_boundary_line(ctx, p, h))
				return;
			p = next_line(ctx, p);
		}
	}
	hit_end(ctx, h);
}

/* Returns where a body that starts at start and is ended by h ends: the
 * line end before a boundary belongs to the boundary (RFC 2046 §5.1.1). */
static size_t
end_before(const struct mime_ctx *ctx, size_t start, const struct hit *h)
{
	size_t e = h->pos;

	if (h->level < 0)
		return ctx->len;
	if (e > start && ctx->data[e - 1] == '\n') {
		e--;
		if (e > start && ctx->data[e - 1] == '\r')
			e--;
	}
	return e;
}

static uint32_t
count_lines(const struct mime_ctx *ctx, size_t start, size_t end)
{
	const char *p = ctx->data + start, *e = ctx->data + end;
	uint32_t n = 0;

	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		if (n < UINT32_MAX)
			n++;
		p++;
	}
	return n;
}

size_t
mime_scan_node_new(struct mime_ctx *ctx, size_t parent)
{
	struct mime_node *n;
	size_t i;

	if (ctx->nnodes == MIME_MAX_PARTS)
		return MIME_NONE;
	if (ctx->nnodes == ctx->cap) {
		ctx->cap = ctx->cap ? ctx->cap * 2 : 16;
		ctx->nodes = xrealloc(ctx->nodes,
		    ctx->cap * sizeof(*ctx->nodes));
	}
	i = ctx->nnodes++;
	n = &ctx->nodes[i];
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->first_child = n->last_child = n->next = MIME_NONE;
	if (parent != MIME_NONE) {
		struct mime_node *p = &ctx->nodes[parent];

		n->depth = p->depth + 1;
		if (p->last_child == MIME_NONE)
			p->first_child = i;
		else
			ctx->nodes[p->last_child].next = i;
		p->last_child = i;
		p->nchildren++;
	}
	return i;
}

/* Is the header name valid (RFC 5322 §3.6.8: printable ASCII but the
 * colon)? */
static bool
is_field_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return true;
}

/* Makes span sp run to end (exclusive, an offset into d), if that is
 * further. */
static void
span_extend(struct mime_span *sp, const char *d, size_t end)
{
	size_t start = (size_t)(sp->p - d);

	if (end > start)
		sp->len = end - start;
}

/* Reads the header of node n starting at pos, up to its blank line, a
 * boundary line of an open multipart or the end of the data, and records
 * the fields it knows (the first of each) among the first MIME_MAX_HEADER
 * bytes. Sets body_off. Returns true with *h set when a boundary line
 * ended the header. */
static bool
scan_header(struct mime_ctx *ctx, size_t n, size_t pos, struct hit *h)
{
	const char *d = ctx->data;
	size_t limit, p = pos;
	struct mime_span *cur = NULL;
	struct mime_node *node = &ctx->nodes[n];

	limit = ctx->len - pos > MIME_MAX_HEADER ? pos + MIME_MAX_HEADER :
	    ctx->len;
	node->header_off = pos;
	while (p < ctx->len) {
		size_t next = next_line(ctx, p), end = next;

		/* The content of the line, without its line end. */
		if (end > p && d[end - 1] == '\n')
			end--;
		if (end > p && d[end - 1] == '\r')
			end--;
		if (end == p) {
			node->body_off = next;
			return false;
		}
		if (d[p] == '-' && is_boundary_line(ctx, p, h)) {
			node->body_off = p;
			return true;
		}
		if (d[p] == ' ' || d[p] == '\t') {
			/* A continuation line (RFC 5322 §2.2.3). */
			if (cur != NULL)
				span_extend(cur, d, end < limit ? end : limit);
			else if (p == pos)
				ctx->is_broken = true;
			p = next;
			continue;
		}
		cur = NULL;
		const char *colon = memchr(d + p, ':', end - p);
		size_t nlen = colon != NULL ? (size_t)(colon - (d + p)) : 0;

		/* Obsolete syntax allows white space before the colon
		 * (RFC 5322 §4.5). */
		while (nlen > 0 && (d[p + nlen - 1] == ' ' ||
		    d[p + nlen - 1] == '\t'))
			nlen--;
		if (colon == NULL || !is_field_name(d + p, nlen)) {
			/* Not a field: skipped, as GMime and Dovecot do. */
			ctx->is_broken = true;
			p = next;
			continue;
		}
		if (p >= limit) {
			ctx->is_broken = true;
			p = next;
			continue;
		}
		enum mime_field f = mime_field_lookup(d + p, nlen);

		if (f != MIME_FIELD_OTHER && node->fields[f].p == NULL) {
			size_t vstart = (size_t)(colon - d) + 1;
			size_t vend = end < limit ? end : limit;

			cur = &node->fields[f];
			cur->p = d + vstart;
			cur->len = 0;
			span_extend(cur, d, vend);
		}
		p = next;
	}
	node->body_off = ctx->len;
	return false;
}

/* Decides what node n is from its Content-Type; parent_is_digest gives
 * the default of multipart/digest parts (RFC 2046 §5.1.5). A multipart
 * gets its boundary in node->boundary when it has one that can be used. */
static void
classify(struct mime_ctx *ctx, size_t n, bool parent_is_digest)
{
	struct mime_node *node = &ctx->nodes[n];
	char *v = mime_field_unfold(&node->fields[MIME_FIELD_CONTENT_TYPE]);
	const char *def = parent_is_digest ? "message/rfc822" : "text/plain";
	const char *b;

	if (v == NULL || !mime_field_parse_ctype(v, &node->ct)) {
		if (v != NULL)
			ctx->is_broken = true;
		node->is_default_type = true;
		node->lc_type = xstrdup(def);
	} else {
		node->lc_type = xasprintf("%s/%s", node->ct.type,
		    node->ct.subtype);
		for (char *c = node->lc_type; *c != '\0'; c++) {
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		}
	}
	if (strncmp(node->lc_type, "multipart/", 10) == 0) {
		node->kind = MIME_KIND_MULTIPART;
		b = mime_field_param(&node->ct.params, "boundary");
		/* An RFC 2231 boundary (rare) is decoded. */
		node->boundary = b != NULL ? xstrdup(b) :
		    mime_text_param(&node->ct.params, "boundary");
		if (node->boundary != NULL && (*node->boundary == '\0' ||
		    strlen(node->boundary) > MIME_MAX_BOUNDARY)) {
			free(node->boundary);
			node->boundary = NULL;
		}
	} else if (strcmp(node->lc_type, "message/rfc822") == 0 ||
	    strcmp(node->lc_type, "message/global") == 0) {
		node->kind = MIME_KIND_MESSAGE;
	}
	free(v);
}

/* Turns container n into a leaf: past MIME_MAX_DEPTH or MIME_MAX_PARTS. */
static void
overflow(struct mime_ctx *ctx, size_t n)
{
	struct mime_node *node = &ctx->nodes[n];

	node->kind = MIME_KIND_LEAF;
	node->is_overflow = true;
	free(node->lc_type);
	node->lc_type = xstrdup("application/octet-stream");
	ctx->is_broken = true;
}

static void scan_entity(struct mime_ctx *ctx, size_t n, size_t pos,
    bool parent_is_digest, struct hit *h);

/* Scans the body parts of multipart n, whose boundary is pushed already,
 * from the first line of its body. Returns the end of n's body and the
 * line that ended it in *h. */
static size_t
scan_multipart(struct mime_ctx *ctx, size_t n, bool is_header_cut,
    struct hit *h)
{
	int level = (int)ctx->nbounds - 1;
	bool is_digest = strcmp(ctx->nodes[n].lc_type,
	    "multipart/digest") == 0;
	size_t body_off = ctx->nodes[n].body_off, end;

	if (!is_header_cut)
		find_boundary(ctx, body_off, h);
	while (h->level == level && !h->is_close) {
		size_t child = mime_scan_node_new(ctx, n);

		if (child == MIME_NONE) {
			/* Out of parts: the rest is skipped, unnamed. */
			ctx->is_broken = true;
			find_boundary(ctx, h->next, h);
			continue;
		}
		scan_entity(ctx, child, h->next, is_digest, h);
	}
	ctx->nbounds--;
	if (h->level == level) {
		/* The close delimiter; the epilogue runs to the boundary of
		 * an enclosing multipart or the end. */
		find_boundary(ctx, h->next, h);
	} else {
		/* An enclosing boundary or the end came first. */
		ctx->is_broken = true;
	}
	if (ctx->nodes[n].nchildren == 0)
		ctx->is_broken = true;
	end = end_before(ctx, body_off, h);
	if (ctx->nodes[n].last_child != MIME_NONE) {
		size_t last = ctx->nodes[ctx->nodes[n].last_child].end_off;

		if (end < last)
			end = last;
	}
	return end;
}

/* Scans the entity (header and body) of node n that starts at pos, and
 * everything inside it. Sets its offsets; *h tells what ended it. */
static void
scan_entity(struct mime_ctx *ctx, size_t n, size_t pos,
    bool parent_is_digest, struct hit *h)
{
	bool is_cut = scan_header(ctx, n, pos, h);
	size_t end, child;
	struct mime_node *node;

	classify(ctx, n, parent_is_digest);
	node = &ctx->nodes[n];
	if (node->kind != MIME_KIND_LEAF &&
	    node->depth + 1 >= MIME_MAX_DEPTH)
		overflow(ctx, n);
	node = &ctx->nodes[n];
	switch (node->kind) {
	case MIME_KIND_MULTIPART:
		if (node->boundary == NULL) {
			/* Without a boundary nothing can be split. */
			ctx->is_broken = true;
			if (!is_cut)
				find_boundary(ctx, node->body_off, h);
			end = end_before(ctx, node->body_off, h);
			break;
		}
		/* The depth limit keeps the stack within its size. The
		 * string outlives the scan of n, and moving the node array
		 * does not move it. */
		if (ctx->nbounds == MIME_MAX_DEPTH)
			panic("mime: boundary stack full at depth %u",
			    node->depth);
		ctx->bounds[ctx->nbounds].s = node->boundary;
		ctx->bounds[ctx->nbounds].len = strlen(node->boundary);
		ctx->nbounds++;
		end = scan_multipart(ctx, n, is_cut, h);
		break;
	case MIME_KIND_MESSAGE:
		child = mime_scan_node_new(ctx, n);
		if (child == MIME_NONE) {
			overflow(ctx, n);
			if (!is_cut)
				find_boundary(ctx, node->body_off, h);
			end = end_before(ctx, node->body_off, h);
			break;
		}
		ctx->nodes[child].is_root = true;
		if (is_cut) {
			/* An empty message: a header without fields. */
			struct mime_node *c = &ctx->nodes[child];

			c->header_off = c->body_off = c->end_off =
			    ctx->nodes[n].body_off;
			classify(ctx, child, false);
			end = c->end_off;
			break;
		}
		scan_entity(ctx, child, ctx->nodes[n].body_off, false, h);
		/* The message ends where the message inside it ends. */
		end = ctx->nodes[child].end_off;
		break;
	default:
		if (!is_cut)
			find_boundary(ctx, node->body_off, h);
		end = end_before(ctx, node->body_off, h);
		break;
	}
	node = &ctx->nodes[n];
	node->end_off = end;
	node->lines = count_lines(ctx, node->body_off, end);
}

void
mime_scan_message(struct mime_ctx *ctx)
{
	struct hit h;
	size_t root = mime_scan_node_new(ctx, MIME_NONE);

	ctx->nodes[root].is_root = true;
	scan_entity(ctx, root, 0, false, &h);
	/* No boundary is open at the top: only the end of data ends it. */
	if (ctx->nodes[root].end_off != ctx->len)
		panic("mime: message ends at %zu of %zu",
		    ctx->nodes[root].end_off, ctx->len);
}
