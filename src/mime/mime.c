#include "mime/mime_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "lib/util.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
init_gmime(void)
{
	g_mime_init();
}

void
mime_init(void)
{
	/* g_mime_init() itself is not safe to run twice at once. */
	pthread_once(&init_once, init_gmime);
}

static char *
lowercase(char *s)
{
	char *c;

	for (c = s; c != NULL && *c != '\0'; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	}
	return s;
}

/* The list of parts being built. */
struct parts {
	struct mime_part *v;
	size_t n;
	size_t cap;
};

static void
parts_add(struct mime_ctx *ctx, struct parts *ps, size_t n, char *section)
{
	const struct mime_node *node = &ctx->nodes[n];
	struct mime_part *p;
	char *v;

	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 8;
		ps->v = xrealloc(ps->v, ps->cap * sizeof(*ps->v));
	}
	p = &ps->v[ps->n++];
	memset(p, 0, sizeof(*p));
	p->section = section;
	p->header_off = node->header_off;
	p->body_off = node->body_off;
	p->end_off = node->end_off;
	p->lines = node->lines;
	p->content_type = xstrdup(node->lc_type);
	if (!node->is_overflow)
		p->charset = lowercase(mime_text_charset(node));
	v = mime_field_unfold(
	    &node->fields[MIME_FIELD_CONTENT_TRANSFER_ENCODING]);
	if (v != NULL)
		p->transfer_encoding = lowercase(mime_field_parse_cte(v));
	free(v);
	p->is_multipart = node->kind == MIME_KIND_MULTIPART;
	p->is_message = node->kind == MIME_KIND_MESSAGE;
	if (p->is_message)
		p->message_body_off = ctx->nodes[node->first_child].body_off;
}

static char *
section_join(const char *prefix, size_t i)
{
	if (*prefix == '\0')
		return xasprintf("%zu", i);
	return xasprintf("%s.%zu", prefix, i);
}

static void parts_add_tree(struct mime_ctx *ctx, struct parts *ps, size_t n,
    char *section);

/* Numbers the parts of the message at node root (RFC 9051 §6.4.5): the
 * parts of its multipart body are prefix.1, prefix.2 ...; a body that is
 * not multipart is part prefix.1 itself. */
static void
parts_add_message(struct mime_ctx *ctx, struct parts *ps, size_t root,
    const char *prefix)
{
	size_t c, i = 1;

	if (ctx->nodes[root].kind != MIME_KIND_MULTIPART) {
		parts_add_tree(ctx, ps, root, section_join(prefix, 1));
		return;
	}
	for (c = ctx->nodes[root].first_child; c != MIME_NONE;
	    c = ctx->nodes[c].next)
		parts_add_tree(ctx, ps, c, section_join(prefix, i++));
}

/* Adds node n as part section (taken), and the parts inside it. */
static void
parts_add_tree(struct mime_ctx *ctx, struct parts *ps, size_t n,
    char *section)
{
	size_t c, i = 1;

	parts_add(ctx, ps, n, section);
	switch (ctx->nodes[n].kind) {
	case MIME_KIND_MULTIPART:
		for (c = ctx->nodes[n].first_child; c != MIME_NONE;
		    c = ctx->nodes[c].next)
			parts_add_tree(ctx, ps, c, section_join(section, i++));
		break;
	case MIME_KIND_MESSAGE:
		parts_add_message(ctx, ps, ctx->nodes[n].first_child, section);
		break;
	default:
		break;
	}
}

/* The IMAP strings of the message. */
static void
parse_imap(struct mime_ctx *ctx, struct mime_info *info_out)
{
	struct mime_str s;

	mime_str_init(&s);
	mime_imap_envelope(ctx, 0, &s);
	info_out->envelope = mime_str_take(&s);
	mime_str_addc(&s, '(');
	mime_imap_body(ctx, 0, true, &s);
	mime_str_addc(&s, ')');
	info_out->bodystructure = mime_str_take(&s);
	mime_str_addc(&s, '(');
	mime_imap_body(ctx, 0, false, &s);
	mime_str_addc(&s, ')');
	info_out->body = mime_str_take(&s);
}

/* The decoded values of the top-level header and the search text. */
static void
parse_text(struct mime_ctx *ctx, struct mime_info *info_out)
{
	const struct mime_node *root = &ctx->nodes[0];
	char *v;
	size_t n;

	v = mime_field_unfold(&root->fields[MIME_FIELD_SUBJECT]);
	info_out->subject = v != NULL ? mime_text_decode(v) : NULL;
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_FROM]);
	info_out->from = mime_text_addresses(v);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_TO]);
	info_out->to = mime_text_addresses(v);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_CC]);
	info_out->cc = mime_text_addresses(v);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_BCC]);
	info_out->bcc = mime_text_addresses(v);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_MESSAGE_ID]);
	info_out->message_id = mime_text_message_ids(v, false);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_IN_REPLY_TO]);
	info_out->in_reply_to = mime_text_message_ids(v, false);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_REFERENCES]);
	info_out->references = mime_text_message_ids(v, true);
	free(v);
	v = mime_field_unfold(&root->fields[MIME_FIELD_DATE]);
	info_out->date = mime_text_date_local(v, &info_out->date_local);
	free(v);

	/* The top-level values are decoded already; the nodes are in
	 * document order. */
	const char *top[] = {
		info_out->subject, info_out->from, info_out->to,
		info_out->cc, info_out->bcc,
	};

	for (n = 0; n < ARRAY_LEN(top); n++) {
		if (top[n] != NULL)
			mime_text_add(ctx, top[n], strlen(top[n]));
	}
	for (n = 0; n < ctx->nnodes && !ctx->is_text_full; n++) {
		if (n > 0 && ctx->nodes[n].is_root)
			mime_text_add_headers(ctx, n);
		if (ctx->nodes[n].kind == MIME_KIND_LEAF)
			mime_text_add_part(ctx, n);
	}
	info_out->text = mime_str_take(&ctx->text);
	info_out->preview = mime_text_preview(ctx);
}

static void
ctx_deinit(struct mime_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nnodes; i++) {
		struct mime_node *node = &ctx->nodes[i];

		free(node->lc_type);
		free(node->boundary);
		free(node->envelope);
		mime_field_ctype_deinit(&node->ct);
	}
	free(ctx->nodes);
	mime_str_deinit(&ctx->text);
}

int
mime_parse(const char *data, size_t len, struct mime_info *out)
{
	struct mime_ctx ctx;
	struct parts ps;

	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	if (data == NULL && len > 0)
		return -1;
	if (data == NULL)
		data = "";
	mime_init();

	memset(&ctx, 0, sizeof(ctx));
	ctx.data = data;
	ctx.len = len;
	ctx.addr_budget = MIME_MAX_ADDRESSES;
	ctx.decode_budget = MIME_MAX_DECODED_HEADERS;
	mime_str_init(&ctx.text);
	mime_scan_message(&ctx);

	parse_imap(&ctx, out);
	memset(&ps, 0, sizeof(ps));
	parts_add(&ctx, &ps, 0, xstrdup(""));
	parts_add_message(&ctx, &ps, 0, "");
	out->parts = ps.v;
	out->nparts = ps.n;
	parse_text(&ctx, out);
	out->is_broken = ctx.is_broken;
	ctx_deinit(&ctx);
	return 0;
}

void
mime_info_deinit(struct mime_info *info)
{
	size_t i;

	for (i = 0; i < info->nparts; i++) {
		free(info->parts[i].section);
		free(info->parts[i].content_type);
		free(info->parts[i].charset);
		free(info->parts[i].transfer_encoding);
	}
	free(info->parts);
	free(info->envelope);
	free(info->bodystructure);
	free(info->body);
	free(info->text);
	free(info->preview);
	free(info->subject);
	free(info->from);
	free(info->to);
	free(info->cc);
	free(info->bcc);
	free(info->message_id);
	free(info->in_reply_to);
	free(info->references);
	memset(info, 0, sizeof(*info));
}
