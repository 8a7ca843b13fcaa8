/*
 * mime_int: what the files of src/mime share. One parse runs in one
 * struct mime_ctx on the caller's thread: mime_scan builds the tree of
 * nodes with exact offsets, mime_field reads structured header values,
 * mime_address and mime_imap write the IMAP strings, mime_text decodes
 * with GMime. The context owns every node and string until mime_parse()
 * hands the results over to the struct mime_info.
 */
#ifndef POSTERN_MIME_INT_H
#define POSTERN_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime/mime.h"

/* No node: parent of the root, end of a child list. */
#define MIME_NONE SIZE_MAX

/* A growable string that is always NUL-terminated once anything was
 * added. Owns s. */
struct mime_str {
	char *s;
	size_t len;
	size_t size;
};

void mime_str_init(struct mime_str *b);
void mime_str_deinit(struct mime_str *b);
void mime_str_add(struct mime_str *b, const void *p, size_t n);
void mime_str_addc(struct mime_str *b, char c);
void mime_str_adds(struct mime_str *b, const char *s);
void mime_str_addf(struct mime_str *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the n bytes at s as an IMAP quoted string or literal. */
void mime_str_add_imap(struct mime_str *b, const char *s, size_t n);
/* Appends s as an IMAP string, or NIL for NULL. */
void mime_str_add_nstring(struct mime_str *b, const char *s);
/* Returns the string (caller frees; "" if nothing was added) and leaves b
 * empty. */
char *mime_str_take(struct mime_str *b);

/* The header fields the parse looks at. */
enum mime_field {
	MIME_FIELD_CONTENT_TYPE,
	MIME_FIELD_CONTENT_TRANSFER_ENCODING,
	MIME_FIELD_CONTENT_ID,
	MIME_FIELD_CONTENT_DESCRIPTION,
	MIME_FIELD_CONTENT_MD5,
	MIME_FIELD_CONTENT_DISPOSITION,
	MIME_FIELD_CONTENT_LANGUAGE,
	MIME_FIELD_CONTENT_LOCATION,
	MIME_FIELD_DATE,
	MIME_FIELD_SUBJECT,
	MIME_FIELD_FROM,
	MIME_FIELD_SENDER,
	MIME_FIELD_REPLY_TO,
	MIME_FIELD_TO,
	MIME_FIELD_CC,
	MIME_FIELD_BCC,
	MIME_FIELD_IN_REPLY_TO,
	MIME_FIELD_MESSAGE_ID,
	MIME_FIELD_REFERENCES,
	MIME_FIELD_COUNT,
	MIME_FIELD_OTHER = MIME_FIELD_COUNT,
};

/* The raw value of a field in the message: the bytes after the colon up to
 * the end of its last line, line end excluded. p is NULL when absent. */
struct mime_span {
	const char *p;
	size_t len;
};

struct mime_param {
	char *name;
	char *value;
};

/* Parameters as BODYSTRUCTURE shows them: values unquoted, RFC 2231
 * continuations merged, names and values in their original case. */
struct mime_params {
	struct mime_param *v;
	size_t n;
};

/* A comma-separated list, such as Content-Language. */
struct mime_list {
	char **v;
	size_t n;
};

/* A Content-Type field as written; type and subtype are NULL when the
 * field is absent or invalid (RFC 2045 §5.2: then text/plain). */
struct mime_ctype {
	char *type;
	char *subtype;
	struct mime_params params;
};

enum mime_kind {
	MIME_KIND_LEAF,
	MIME_KIND_MULTIPART,
	MIME_KIND_MESSAGE,	/* message/rfc822 or message/global */
};

/* One entity of the message. Nodes live in one array; links are indexes
 * (MIME_NONE for none) so that the array may grow. */
struct mime_node {
	size_t header_off;
	size_t body_off;
	size_t end_off;
	uint32_t lines;
	size_t parent;
	size_t first_child;
	size_t last_child;
	size_t next;
	size_t nchildren;
	unsigned depth;		/* 0 for the top-level message */
	enum mime_kind kind;
	bool is_root;		/* a message: the top level or the one inside
				 * a message part; it has an envelope */
	bool is_overflow;	/* a container past a limit, reported as an
				 * application/octet-stream leaf */
	bool is_default_type;	/* no valid Content-Type */
	char *lc_type;		/* lowercase "type/subtype" as reported */
	char *boundary;		/* a multipart's, when it can be used */
	struct mime_ctype ct;
	struct mime_span fields[MIME_FIELD_COUNT];
	char *envelope;		/* is_root: "(...)" once written */
};

/* A boundary of an open multipart, innermost last. */
struct mime_bound {
	const char *s;
	size_t len;
};

struct mime_ctx {
	const char *data;
	size_t len;
	struct mime_node *nodes;
	size_t nnodes;
	size_t cap;
	struct mime_bound bounds[MIME_MAX_DEPTH];
	size_t nbounds;
	size_t addr_budget;	/* addresses the envelopes may still hold */
	size_t decode_budget;	/* header bytes the text may still decode */
	struct mime_str text;	/* the search text being built */
	bool is_text_full;
	bool is_broken;
};

/* mime_scan.c: builds ctx->nodes from the raw message; node 0 is the
 * top-level message. */
void mime_scan_message(struct mime_ctx *ctx);
/* Appends a node below parent (MIME_NONE for the root) and returns its
 * index, or MIME_NONE when MIME_MAX_PARTS nodes exist. */
size_t mime_scan_node_new(struct mime_ctx *ctx, size_t parent);

/* mime_field.c: structured header values. */
/* Returns which field a header name is (MIME_FIELD_OTHER if none). */
enum mime_field mime_field_lookup(const char *name, size_t len);
/* Returns the value of sp unfolded (CR and LF removed, NUL bytes turned
 * into U+FFFD, surrounding white space trimmed) in a new string, or NULL
 * when sp is absent. */
char *mime_field_unfold(const struct mime_span *sp);
/* Parses a Content-Type value into *ct_out. Returns false, with it empty,
 * when the value has no valid type/subtype. */
bool mime_field_parse_ctype(const char *v, struct mime_ctype *ct_out);
/* Parses a Content-Disposition value. Returns its type (new string), or
 * NULL with *params_out empty when there is none. */
char *mime_field_parse_disposition(const char *v,
    struct mime_params *params_out);
/* Parses a Content-Language value into its language tags. */
void mime_field_parse_language(const char *v, struct mime_list *langs_out);
/* Returns the Content-Transfer-Encoding token of v (new string), or NULL
 * when v is not one token. */
char *mime_field_parse_cte(const char *v);
/* Returns the value of the parameter called name (compared
 * case-insensitively; "title*" finds an RFC 2231 one as merged), or NULL.
 * Borrowed from p. */
const char *mime_field_param(const struct mime_params *p, const char *name);
void mime_field_params_deinit(struct mime_params *p);
void mime_field_list_deinit(struct mime_list *l);
void mime_field_ctype_deinit(struct mime_ctype *ct);

/* mime_address.c: writes the address list of a header value (unfolded)
 * as an ENVELOPE address list, or NIL when it holds none. Spends
 * ctx->addr_budget. */
void mime_address_write(struct mime_ctx *ctx, const char *v,
    struct mime_str *b);

/* mime_imap.c: the IMAP strings. */
/* Writes the ENVELOPE "(...)" of the message at node root. */
void mime_imap_envelope(struct mime_ctx *ctx, size_t root,
    struct mime_str *b);
/* Writes the BODY (extended false) or BODYSTRUCTURE of node n, without the
 * parentheses around it. */
void mime_imap_body(struct mime_ctx *ctx, size_t n, bool extended,
    struct mime_str *b);

/* mime_text.c: decoding with GMime. Strings returned are new (caller
 * frees) and UTF-8. */
/* Decodes RFC 2047 words of an unstructured value such as Subject. */
char *mime_text_decode(const char *v);
/* Decodes an address list to "Name <user@host>, ..."; NULL for NULL. */
char *mime_text_addresses(const char *v);
/* Returns the first message id of v without angle brackets, or every id
 * separated by spaces when is_all; NULL when there is none. */
char *mime_text_message_ids(const char *v, bool is_all);
/* Returns the Date value as UTC unix seconds, or -1. */
int64_t mime_text_date(const char *v);
/* The same, and *local_out the clock reading of the field as if in UTC
 * (the instant plus the zone's offset). */
int64_t mime_text_date_local(const char *v, int64_t *local_out);
/* Returns the value of parameter name in p decoded to UTF-8: the RFC 2231
 * form name* percent-decoded and converted from its charset, a plain one
 * RFC 2047 decoded; NULL when p has neither. */
char *mime_text_param(const struct mime_params *p, const char *name);
/* Returns the charset parameter of node as written (new string), RFC 2231
 * included, or NULL. */
char *mime_text_charset(const struct mime_node *node);
/* Appends one item (and a line end) to the search text, within
 * MIME_MAX_TEXT. */
void mime_text_add(struct mime_ctx *ctx, const char *s, size_t n);
/* Appends the decoded Subject, From, To, Cc and Bcc of the message at
 * root to the search text, within ctx->decode_budget. */
void mime_text_add_headers(struct mime_ctx *ctx, size_t root);
/* Appends the decoded body of leaf n (text/...) and its file name. */
void mime_text_add_part(struct mime_ctx *ctx, size_t n);
/* The preview of the message (RFC 8970 §4.1; mime_info.preview). */
char *mime_text_preview(struct mime_ctx *ctx);

#endif
