#include "mime/mime_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/*
 * The ENVELOPE, BODY and BODYSTRUCTURE strings of RFC 9051 §7.5.2 (and
 * RFC 3501 §7.4.2). Where the RFCs leave a choice the strings are what
 * Dovecot sends, which clients know well: type, subtype and parameters
 * keep the case they were written in, text parts without a charset get
 * ("charset" "us-ascii"), extension data is always complete (NIL where a
 * field is absent), and a multipart without parts shows one empty
 * text/plain part. Sizes and line counts are those of the raw body.
 */

#define EMPTY_PART "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL " \
	"\"7bit\" 0 0"

char *
mime_imap_string(const char *s)
{
	struct mime_str b;

	mime_str_init(&b);
	mime_str_add_nstring(&b, s);
	return mime_str_take(&b);
}

/* Writes the unfolded value of field f of node n as an nstring. */
static void
add_field(struct mime_str *b, const struct mime_node *node,
    enum mime_field f)
{
	char *v = mime_field_unfold(&node->fields[f]);

	mime_str_add_nstring(b, v);
	free(v);
}

/* Writes the address list of field f, or NIL. */
static void
add_addresses(struct mime_ctx *ctx, const struct mime_node *node,
    enum mime_field f, struct mime_str *b)
{
	char *v = mime_field_unfold(&node->fields[f]);

	if (v == NULL)
		mime_str_adds(b, "NIL");
	else
		mime_address_write(ctx, v, b);
	free(v);
}

void
mime_imap_envelope(struct mime_ctx *ctx, size_t root, struct mime_str *b)
{
	const struct mime_node *node = &ctx->nodes[root];
	struct mime_str from, other;
	static const enum mime_field defaulted[] = {
		MIME_FIELD_SENDER, MIME_FIELD_REPLY_TO,
	};
	static const enum mime_field lists[] = {
		MIME_FIELD_TO, MIME_FIELD_CC, MIME_FIELD_BCC,
	};
	size_t i;

	mime_str_init(&from);
	add_addresses(ctx, node, MIME_FIELD_FROM, &from);
	mime_str_addc(b, '(');
	add_field(b, node, MIME_FIELD_DATE);
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_SUBJECT);
	mime_str_addc(b, ' ');
	mime_str_add(b, from.s, from.len);
	/* RFC 9051 §7.5.2: the server fills in Sender and Reply-To from
	 * From when they are absent (or hold no address). */
	for (i = 0; i < ARRAY_LEN(defaulted); i++) {
		mime_str_init(&other);
		add_addresses(ctx, node, defaulted[i], &other);
		mime_str_addc(b, ' ');
		if (strcmp(other.s, "NIL") == 0)
			mime_str_add(b, from.s, from.len);
		else
			mime_str_add(b, other.s, other.len);
		mime_str_deinit(&other);
	}
	for (i = 0; i < ARRAY_LEN(lists); i++) {
		mime_str_addc(b, ' ');
		add_addresses(ctx, node, lists[i], b);
	}
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_IN_REPLY_TO);
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_MESSAGE_ID);
	mime_str_addc(b, ')');
	mime_str_deinit(&from);
}

/* Writes body-fld-param: NIL, or the parameters; a text part without a
 * charset gets the default one (RFC 2045 §5.2). */
static void
add_params(struct mime_str *b, const struct mime_params *p, bool is_text)
{
	bool has_charset = false;
	size_t i;

	if (!is_text && p->n == 0) {
		mime_str_adds(b, "NIL");
		return;
	}
	mime_str_addc(b, '(');
	for (i = 0; i < p->n; i++) {
		if (i > 0)
			mime_str_addc(b, ' ');
		if (strcasecmp(p->v[i].name, "charset") == 0)
			has_charset = true;
		mime_str_add_nstring(b, p->v[i].name);
		mime_str_addc(b, ' ');
		mime_str_add_nstring(b, p->v[i].value);
	}
	if (is_text && !has_charset) {
		if (p->n > 0)
			mime_str_addc(b, ' ');
		mime_str_adds(b, "\"charset\" \"us-ascii\"");
	}
	mime_str_addc(b, ')');
}

/* Writes " disposition language location", the extension data both kinds
 * of part end with. */
static void
add_ext_common(const struct mime_node *node, struct mime_str *b)
{
	struct mime_params params;
	struct mime_list langs;
	char *v, *type = NULL;
	size_t i;

	mime_str_addc(b, ' ');
	v = mime_field_unfold(&node->fields[MIME_FIELD_CONTENT_DISPOSITION]);
	if (v != NULL)
		type = mime_field_parse_disposition(v, &params);
	if (type == NULL) {
		mime_str_adds(b, "NIL");
	} else {
		mime_str_addc(b, '(');
		mime_str_add_nstring(b, type);
		mime_str_addc(b, ' ');
		add_params(b, &params, false);
		mime_str_addc(b, ')');
		mime_field_params_deinit(&params);
		free(type);
	}
	free(v);

	mime_str_addc(b, ' ');
	v = mime_field_unfold(&node->fields[MIME_FIELD_CONTENT_LANGUAGE]);
	langs.n = 0;
	if (v != NULL)
		mime_field_parse_language(v, &langs);
	if (langs.n == 0) {
		mime_str_adds(b, "NIL");
	} else {
		mime_str_addc(b, '(');
		for (i = 0; i < langs.n; i++) {
			if (i > 0)
				mime_str_addc(b, ' ');
			mime_str_add_nstring(b, langs.v[i]);
		}
		mime_str_addc(b, ')');
		mime_field_list_deinit(&langs);
	}
	free(v);

	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_CONTENT_LOCATION);
}

static void
add_multipart(struct mime_ctx *ctx, size_t n, bool extended,
    struct mime_str *b)
{
	const struct mime_node *node = &ctx->nodes[n];
	size_t c;

	if (node->nchildren == 0) {
		mime_str_adds(b, extended ?
		    "(" EMPTY_PART " NIL NIL NIL NIL)" : "(" EMPTY_PART ")");
	}
	for (c = node->first_child; c != MIME_NONE; c = ctx->nodes[c].next) {
		mime_str_addc(b, '(');
		mime_imap_body(ctx, c, extended, b);
		mime_str_addc(b, ')');
	}
	mime_str_addc(b, ' ');
	mime_str_add_nstring(b, node->ct.subtype);
	if (!extended)
		return;
	mime_str_addc(b, ' ');
	add_params(b, &node->ct.params, false);
	add_ext_common(node, b);
}

void
mime_imap_body(struct mime_ctx *ctx, size_t n, bool extended,
    struct mime_str *b)
{
	struct mime_node *node = &ctx->nodes[n];
	bool is_text;
	char *cte;

	if (node->kind == MIME_KIND_MULTIPART) {
		add_multipart(ctx, n, extended, b);
		return;
	}
	if (node->is_overflow) {
		mime_str_adds(b, "\"application\" \"octet-stream\"");
	} else if (node->is_default_type) {
		mime_str_adds(b, node->kind == MIME_KIND_MESSAGE ?
		    "\"message\" \"rfc822\"" : "\"text\" \"plain\"");
	} else {
		mime_str_add_nstring(b, node->ct.type);
		mime_str_addc(b, ' ');
		mime_str_add_nstring(b, node->ct.subtype);
	}
	is_text = !node->is_overflow && strncmp(node->lc_type, "text/", 5) == 0;
	mime_str_addc(b, ' ');
	add_params(b, &node->ct.params, is_text);
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_CONTENT_ID);
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_CONTENT_DESCRIPTION);
	mime_str_addc(b, ' ');
	cte = mime_field_unfold(
	    &node->fields[MIME_FIELD_CONTENT_TRANSFER_ENCODING]);
	if (cte != NULL) {
		char *token = mime_field_parse_cte(cte);

		free(cte);
		cte = token;
	}
	mime_str_add_nstring(b, cte != NULL ? cte : "7bit");
	free(cte);
	mime_str_addf(b, " %zu", node->end_off - node->body_off);
	if (is_text) {
		mime_str_addf(b, " %" PRIu32, node->lines);
	} else if (node->kind == MIME_KIND_MESSAGE) {
		size_t child = node->first_child;

		/* RFC 9051 §7.5.2: a message part adds the envelope and
		 * body structure of the message in it, then its lines. */
		if (ctx->nodes[child].envelope == NULL) {
			struct mime_str env;

			mime_str_init(&env);
			mime_imap_envelope(ctx, child, &env);
			ctx->nodes[child].envelope = mime_str_take(&env);
		}
		mime_str_addc(b, ' ');
		mime_str_adds(b, ctx->nodes[child].envelope);
		mime_str_adds(b, " (");
		mime_imap_body(ctx, child, extended, b);
		mime_str_addc(b, ')');
		node = &ctx->nodes[n];
		mime_str_addf(b, " %" PRIu32, node->lines);
	}
	if (!extended)
		return;
	mime_str_addc(b, ' ');
	add_field(b, node, MIME_FIELD_CONTENT_MD5);
	add_ext_common(node, b);
}
