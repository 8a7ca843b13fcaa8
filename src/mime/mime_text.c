#include "mime/mime_int.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "lib/util.h"

/*
 * Decoding with GMime: RFC 2047 words, address lists, message ids, dates,
 * base64 and quoted-printable, charset conversion through GMime's iconv
 * cache. After g_mime_init() these calls share no unlocked state (the
 * charset table and the iconv cache have their own locks; each GObject
 * made here belongs to this thread), so worker threads call them without a
 * lock of ours. Strings GMime allocates are copied into our own
 * allocations and given back with g_free().
 *
 * GMime remembers every charset name it is asked to look up, for the life
 * of the process (about 120 bytes each), and mail chooses those names. So
 * no name reaches GMime unless iconv or GMime's own alias list knows it,
 * a finite set: an encoded word in an unknown charset is decoded as
 * ISO-8859-1, and RFC 2231 values, whose merging mime_field does anyway,
 * are percent-decoded here and converted by the same checked converter
 * rather than by GMime's parameter parser.
 */

/* Raw body bytes decoded per step: bounds the scratch memory. */
#define CHUNK (64u << 10)
/* Bytes of an incomplete character kept across steps. */
#define CARRY 16
/* The longest charset name looked up. */
#define CHARSET_MAX 40

/* Where converted text goes: b, up to max bytes. */
struct sink {
	struct mime_str *b;
	size_t max;
	bool *is_full;
};

/* Appends n bytes of UTF-8, as much as fits: a cut falls between
 * characters. NUL bytes become spaces. */
static void
sink_add(struct sink *k, const char *s, size_t n)
{
	size_t room, start, i;

	if (*k->is_full || n == 0)
		return;
	room = k->max - k->b->len;
	if (n >= room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		*k->is_full = true;
	}
	start = k->b->len;
	mime_str_add(k->b, s, n);
	for (i = start; i < k->b->len; i++) {
		if (k->b->s[i] == '\0')
			k->b->s[i] = ' ';
	}
}

static struct sink
text_sink(struct mime_ctx *ctx)
{
	return (struct sink){ &ctx->text, MIME_MAX_TEXT, &ctx->is_text_full };
}

/* Names GMime maps to an iconv name of its own (gmime-charset.c). */
static const char *const gmime_aliases[] = {
	"ks_c_5601-1987", "ks_c_5861-1992", "5601", "ksc-5601",
	"ksc-5601-1987", "ksc-5601_1987", "euckr-0", "big5-0", "big5.eten-0",
	"big5hkscs-0", "gb2312-0", "gb2312-80", "gb2312.1980-0", "gb18030-0",
	"gbk-0", "eucjp-0", "ujis-0", "jisx0208.1983-0", "jisx0212.1990-0",
	"pck",
};

/* Only these characters: iconv would strip others, which would make
 * endless spellings of one name. */
static bool
is_charset_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CHARSET_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* Is the n-byte name a charset iconv or GMime knows? Asking glibc's
 * iconv_open() leaves nothing behind for a name it does not know. */
static bool
is_known_charset(const char *s, size_t n)
{
	char name[CHARSET_MAX + 1];
	iconv_t cd;
	size_t i;

	if (!is_charset_name(s, n))
		return false;
	memcpy(name, s, n);
	name[n] = '\0';
	for (i = 0; i < ARRAY_LEN(gmime_aliases); i++) {
		if (strcasecmp(name, gmime_aliases[i]) == 0)
			return true;
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

/* Returns a copy of v in which every RFC 2047 encoded word names a known
 * charset: "=?charset*lang?" keeps just its charset, or reads
 * "=?iso-8859-1?" when the charset is unknown. Every "=?" up to the next
 * '?' is treated as a word, as a lenient decoder would. */
static char *
words_sanitize(const char *v)
{
	struct mime_str b;
	const char *p = v, *w;
	char last[CHARSET_MAX + 1] = "";

	mime_str_init(&b);
	while ((w = strstr(p, "=?")) != NULL) {
		const char *cs = w + 2, *q = strchr(cs, '?'), *star;
		size_t n;

		if (q == NULL)
			break;
		mime_str_add(&b, p, (size_t)(cs - p));
		star = memchr(cs, '*', (size_t)(q - cs));
		n = (size_t)((star != NULL ? star : q) - cs);
		/* One message repeats one charset: ask once. */
		if (n > 0 && n == strlen(last) && memcmp(cs, last, n) == 0) {
			mime_str_add(&b, cs, n);
		} else if (is_known_charset(cs, n)) {
			mime_str_add(&b, cs, n);
			memcpy(last, cs, n);
			last[n] = '\0';
		} else {
			mime_str_adds(&b, "iso-8859-1");
		}
		p = q;
	}
	mime_str_adds(&b, p);
	return mime_str_take(&b);
}

/* Returns a copy of s that is valid UTF-8 (bad bytes become U+FFFD). */
static char *
copy_valid(const char *s)
{
	char *valid = g_utf8_make_valid(s, -1), *copy;

	copy = xstrdup(valid);
	g_free(valid);
	return copy;
}

/* Returns copy_valid() of a GMime string, freeing g. */
static char *
take_gstring(char *g)
{
	char *s;

	if (g == NULL)
		return NULL;
	s = copy_valid(g);
	g_free(g);
	return s;
}

char *
mime_text_decode(const char *v)
{
	char *safe = words_sanitize(v), *s;

	s = take_gstring(g_mime_utils_header_decode_text(NULL, safe));
	free(safe);
	return s;
}

char *
mime_text_addresses(const char *v)
{
	InternetAddressList *list;
	char *safe, *g;

	if (v == NULL)
		return NULL;
	safe = words_sanitize(v);
	list = internet_address_list_parse(NULL, safe);
	free(safe);
	if (list == NULL || internet_address_list_length(list) == 0) {
		if (list != NULL)
			g_object_unref(list);
		return mime_text_decode(v);
	}
	g = internet_address_list_to_string(list, NULL, FALSE);
	g_object_unref(list);
	return take_gstring(g);
}

char *
mime_text_message_ids(const char *v, bool is_all)
{
	GMimeReferences *refs;
	struct mime_str b;
	int i, n;

	if (v == NULL)
		return NULL;
	refs = g_mime_references_parse(NULL, v);
	n = refs != NULL ? g_mime_references_length(refs) : 0;
	mime_str_init(&b);
	for (i = 0; i < n && (is_all || b.len == 0); i++) {
		const char *id = g_mime_references_get_message_id(refs, i);

		if (id == NULL || *id == '\0')
			continue;
		if (b.len > 0)
			mime_str_addc(&b, ' ');
		mime_str_adds(&b, id);
	}
	if (refs != NULL)
		g_mime_references_free(refs);
	if (b.len > 0) {
		char *ids = copy_valid(b.s);

		mime_str_deinit(&b);
		return ids;
	}
	mime_str_deinit(&b);
	/* Not in angle brackets: GMime still reads one id. */
	char *id = take_gstring(g_mime_utils_decode_message_id(v));

	if (id != NULL && *id == '\0') {
		free(id);
		id = NULL;
	}
	return id;
}

int64_t
mime_text_date_local(const char *v, int64_t *local_out)
{
	GDateTime *dt;
	int64_t t;

	*local_out = -1;
	if (v == NULL)
		return -1;
	dt = g_mime_utils_header_decode_date(v);
	if (dt == NULL)
		return -1;
	t = g_date_time_to_unix(dt);
	*local_out = t + g_date_time_get_utc_offset(dt) / G_TIME_SPAN_SECOND;
	g_date_time_unref(dt);
	return t;
}

int64_t
mime_text_date(const char *v)
{
	int64_t local;

	return mime_text_date_local(v, &local);
}

/* How bytes become UTF-8. */
enum conv_mode {
	CONV_UTF8_STRICT,	/* declared UTF-8: bad bytes become U+FFFD */
	CONV_UTF8_LATIN1,	/* undeclared, ASCII or unknown: UTF-8 where
				 * valid, Latin-1 elsewhere */
	CONV_ICONV,		/* anything else iconv knows */
};

struct conv {
	enum conv_mode mode;
	iconv_t cd;
	char carry[CARRY];
	size_t ncarry;
};

static void
conv_init(struct conv *cv, const char *charset)
{
	static const char *const ascii[] = {
		"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "646",
	};
	size_t i;

	cv->mode = CONV_UTF8_LATIN1;
	cv->cd = (iconv_t)-1;
	cv->ncarry = 0;
	if (charset == NULL || !is_known_charset(charset, strlen(charset)))
		return;
	if (strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "utf8") == 0) {
		cv->mode = CONV_UTF8_STRICT;
		return;
	}
	for (i = 0; i < ARRAY_LEN(ascii); i++) {
		if (strcasecmp(charset, ascii[i]) == 0)
			return;
	}
	cv->cd = g_mime_iconv_open("UTF-8", charset);
	if (cv->cd != (iconv_t)-1)
		cv->mode = CONV_ICONV;
}

static void
conv_deinit(struct conv *cv)
{
	if (cv->cd != (iconv_t)-1)
		g_mime_iconv_close(cv->cd);
	cv->cd = (iconv_t)-1;
}

/* Returns the length of the valid UTF-8 character at s (RFC 3629 §4),
 * 0 if it is invalid, or -1 if the n bytes end inside it. */
static int
utf8_char_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

/* Converts UTF-8 with repairs; returns the bytes left over at the end
 * (an incomplete character) when more input follows. */
static size_t
conv_utf8(struct sink *k, struct conv *cv, const unsigned char *s, size_t n,
    bool is_last)
{
	struct mime_str utf8;
	size_t i = 0;

	mime_str_init(&utf8);
	while (i < n) {
		int len = utf8_char_len(s + i, n - i);

		if (len < 0 && !is_last)
			break;
		if (len > 0) {
			mime_str_add(&utf8, s + i, (size_t)len);
			i += (size_t)len;
			continue;
		}
		if (cv->mode == CONV_UTF8_STRICT) {
			mime_str_add(&utf8, "\xef\xbf\xbd", 3);
		} else {
			/* Latin-1 byte c is U+0080 .. U+00ff. */
			char two[2] = { (char)(0xc0 | (s[i] >> 6)),
			    (char)(0x80 | (s[i] & 0x3f)) };

			mime_str_add(&utf8, two, 2);
		}
		i++;
	}
	sink_add(k, utf8.s, utf8.len);
	mime_str_deinit(&utf8);
	return n - i;
}

/* Converts with iconv; bytes iconv rejects become U+FFFD. Returns the
 * bytes of an incomplete character left at the end when more follows. */
static size_t
conv_iconv(struct sink *k, struct conv *cv, const unsigned char *s,
    size_t n, bool is_last)
{
	char buf[16384], *in = (char *)s, *outp;
	size_t inleft = n, outleft;

	while (inleft > 0 && !*k->is_full) {
		size_t r;

		outp = buf;
		outleft = sizeof(buf);
		r = iconv(cv->cd, &in, &inleft, &outp, &outleft);
		sink_add(k, buf, (size_t)(outp - buf));
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && !is_last && inleft <= CARRY)
			return inleft;
		if (errno != EILSEQ && errno != EINVAL)
			break;
		sink_add(k, "\xef\xbf\xbd", 3);
		in++;
		inleft--;
	}
	if (is_last) {
		outp = buf;
		outleft = sizeof(buf);
		iconv(cv->cd, NULL, NULL, &outp, &outleft);
		sink_add(k, buf, (size_t)(outp - buf));
	}
	return 0;
}

/* Feeds n bytes (after what is carried) to the converter. */
static void
conv_feed(struct sink *k, struct conv *cv, const char *s, size_t n,
    bool is_last)
{
	unsigned char *work;
	size_t len = cv->ncarry + n, left;

	if (len == 0)
		return;
	work = xmalloc(len);
	memcpy(work, cv->carry, cv->ncarry);
	if (n > 0)
		memcpy(work + cv->ncarry, s, n);
	if (cv->mode == CONV_ICONV)
		left = conv_iconv(k, cv, work, len, is_last);
	else
		left = conv_utf8(k, cv, work, len, is_last);
	if (left > CARRY)
		left = 0;
	memcpy(cv->carry, work + len - left, left);
	cv->ncarry = left;
	free(work);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes an RFC 2231 §4 extended value, charset'language'%XX..., to
 * UTF-8. */
static char *
decode_extended(const char *v)
{
	const char *q1 = strchr(v, '\''), *data = v;
	char *charset = NULL;
	struct mime_str raw, out;
	struct conv cv;
	bool is_full = false;
	struct sink k = { &out, MIME_MAX_HEADER, &is_full };

	if (q1 != NULL) {
		const char *q2 = strchr(q1 + 1, '\'');

		charset = xstrndup(v, (size_t)(q1 - v));
		data = q2 != NULL ? q2 + 1 : q1 + 1;
	}
	mime_str_init(&raw);
	for (; *data != '\0'; data++) {
		int hi, lo;

		if (*data == '%' && (hi = hex_value(data[1])) >= 0 &&
		    (lo = hex_value(data[2])) >= 0) {
			mime_str_addc(&raw, (char)(hi << 4 | lo));
			data += 2;
		} else {
			mime_str_addc(&raw, *data);
		}
	}
	mime_str_init(&out);
	conv_init(&cv, charset);
	conv_feed(&k, &cv, raw.s, raw.len, true);
	conv_deinit(&cv);
	mime_str_deinit(&raw);
	free(charset);
	return mime_str_take(&out);
}

char *
mime_text_param(const struct mime_params *p, const char *name)
{
	const char *v = mime_field_param(p, name);
	char *ext;

	/* A plain value often holds RFC 2047 words, against RFC 2047 §5
	 * but as mail programs write file names. */
	if (v != NULL)
		return mime_text_decode(v);
	ext = xasprintf("%s*", name);
	v = mime_field_param(p, ext);
	free(ext);
	return v != NULL ? decode_extended(v) : NULL;
}

void
mime_text_add(struct mime_ctx *ctx, const char *s, size_t n)
{
	struct sink k = text_sink(ctx);

	if (n == 0)
		return;
	sink_add(&k, s, n);
	sink_add(&k, "\n", 1);
}

/* Adds a decoded value unless it is NULL; frees it. */
static void
add_value(struct mime_ctx *ctx, char *s)
{
	if (s != NULL)
		mime_text_add(ctx, s, strlen(s));
	free(s);
}

/* Takes n bytes from the decoding budget; false once it is spent. */
static bool
spend_decoding(struct mime_ctx *ctx, size_t n)
{
	if (n > ctx->decode_budget) {
		ctx->decode_budget = 0;
		return false;
	}
	ctx->decode_budget -= n;
	return true;
}

void
mime_text_add_headers(struct mime_ctx *ctx, size_t root)
{
	static const enum mime_field fields[] = {
		MIME_FIELD_SUBJECT, MIME_FIELD_FROM, MIME_FIELD_TO,
		MIME_FIELD_CC, MIME_FIELD_BCC,
	};
	const struct mime_node *node = &ctx->nodes[root];
	size_t i;

	for (i = 0; i < ARRAY_LEN(fields) && !ctx->is_text_full; i++) {
		char *v = mime_field_unfold(&node->fields[fields[i]]);

		if (v != NULL && spend_decoding(ctx, strlen(v)))
			add_value(ctx, fields[i] == MIME_FIELD_SUBJECT ?
			    mime_text_decode(v) : mime_text_addresses(v));
		free(v);
	}
}

static GMimeContentEncoding
body_encoding(const struct mime_node *node)
{
	char *v = mime_field_unfold(
	    &node->fields[MIME_FIELD_CONTENT_TRANSFER_ENCODING]);
	char *token = v != NULL ? mime_field_parse_cte(v) : NULL;
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;

	if (token != NULL) {
		if (strcasecmp(token, "base64") == 0)
			enc = GMIME_CONTENT_ENCODING_BASE64;
		else if (strcasecmp(token, "quoted-printable") == 0)
			enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
		else if (strcasecmp(token, "x-uuencode") == 0)
			enc = GMIME_CONTENT_ENCODING_UUENCODE;
	}
	free(token);
	free(v);
	return enc;
}

char *
mime_text_charset(const struct mime_node *node)
{
	const char *cs = mime_field_param(&node->ct.params, "charset");

	return cs != NULL ? xstrdup(cs) :
	    mime_text_param(&node->ct.params, "charset");
}

/* Decodes the transfer encoding of the body of node in CHUNK steps and
 * converts it to UTF-8 into k, until k is full. */
static void
add_body_to(struct mime_ctx *ctx, const struct mime_node *node,
    struct sink *kp)
{
	GMimeContentEncoding enc = body_encoding(node);
	GMimeEncoding state;
	struct conv cv;
	struct sink k = *kp;
	char *charset = mime_text_charset(node), *buf = NULL;
	size_t off = node->body_off, bufsize = 0;

	conv_init(&cv, charset);
	free(charset);
	if (enc != GMIME_CONTENT_ENCODING_DEFAULT)
		g_mime_encoding_init_decode(&state, enc);
	while (off < node->end_off && !*k.is_full) {
		size_t n = node->end_off - off, m;
		bool is_last;

		if (n > CHUNK)
			n = CHUNK;
		is_last = off + n == node->end_off;
		if (enc == GMIME_CONTENT_ENCODING_DEFAULT) {
			conv_feed(&k, &cv, ctx->data + off, n, is_last);
			off += n;
			continue;
		}
		m = g_mime_encoding_outlen(&state, n) + 16;
		if (m > bufsize) {
			buf = xrealloc(buf, m);
			bufsize = m;
		}
		if (is_last)
			m = g_mime_encoding_flush(&state, ctx->data + off, n,
			    buf);
		else
			m = g_mime_encoding_step(&state, ctx->data + off, n,
			    buf);
		conv_feed(&k, &cv, buf, m, is_last);
		off += n;
	}
	free(buf);
	conv_deinit(&cv);
}

/* The same into the search text, and a line end. */
static void
add_body(struct mime_ctx *ctx, const struct mime_node *node)
{
	struct sink k = text_sink(ctx);

	add_body_to(ctx, node, &k);
	sink_add(&k, "\n", 1);
}

void
mime_text_add_part(struct mime_ctx *ctx, size_t n)
{
	const struct mime_node *node = &ctx->nodes[n];
	struct mime_params disp;
	char *v, *type, *name = NULL;

	/* The file name: of Content-Disposition, else the older name
	 * parameter of Content-Type. */
	v = mime_field_unfold(&node->fields[MIME_FIELD_CONTENT_DISPOSITION]);
	if (v != NULL) {
		type = mime_field_parse_disposition(v, &disp);
		if (type != NULL) {
			name = mime_text_param(&disp, "filename");
			mime_field_params_deinit(&disp);
			free(type);
		}
	}
	free(v);
	if (name == NULL)
		name = mime_text_param(&node->ct.params, "name");
	add_value(ctx, name);
	if (node->kind == MIME_KIND_LEAF && !node->is_overflow &&
	    strncmp(node->lc_type, "text/", 5) == 0)
		add_body(ctx, node);
}

/* ---- Preview (RFC 8970) ------------------------------------------------ */

/* Decoded text read from the part a preview comes from: room for 256
 * characters after HTML markup (a style sheet, say) is dropped. */
#define PREVIEW_SOURCE_MAX (256u << 10)

/* Whether leaf n is shown inline: not a Content-Disposition attachment. */
static bool
is_inline(const struct mime_node *node)
{
	struct mime_params disp;
	char *v, *type;
	bool is_attachment = false;

	v = mime_field_unfold(&node->fields[MIME_FIELD_CONTENT_DISPOSITION]);
	if (v != NULL) {
		type = mime_field_parse_disposition(v, &disp);
		if (type != NULL) {
			is_attachment = strcasecmp(type, "attachment") == 0;
			mime_field_params_deinit(&disp);
			free(type);
		}
	}
	free(v);
	return !is_attachment;
}

/* Appends code point cp as UTF-8. */
static void
add_utf8(struct mime_str *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = ' ';
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	mime_str_add(b, u, n);
}

/* The entity at s[i] ("&amp;", "&#233;", "&#x20AC;"): appends what it
 * stands for and returns its length, or 0 when it is none we know (the
 * "&" is then kept as written). */
static size_t
html_entity(const char *s, size_t i, size_t len, struct mime_str *b)
{
	static const struct {
		const char *name;
		unsigned long cp;
	} names[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "quot;", '"' }, { "apos;", '\'' }, { "nbsp;", ' ' },
	};
	size_t j = i + 1;
	unsigned long cp = 0;

	if (j < len && s[j] == '#') {
		bool is_hex = j + 1 < len && (s[j + 1] == 'x' ||
		    s[j + 1] == 'X');
		size_t digits = 0;

		j += is_hex ? 2 : 1;
		for (; j < len && digits < 8; j++, digits++) {
			int c = (unsigned char)s[j];
			int v = c >= '0' && c <= '9' ? c - '0' :
			    is_hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			    is_hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

			if (v < 0)
				break;
			cp = cp * (is_hex ? 16 : 10) + (unsigned long)v;
		}
		if (digits == 0 || j >= len || s[j] != ';')
			return 0;
		add_utf8(b, cp);
		return j + 1 - i;
	}
	for (size_t k = 0; k < ARRAY_LEN(names); k++) {
		size_t n = strlen(names[k].name);

		if (len - j >= n && strncasecmp(s + j, names[k].name, n) == 0) {
			add_utf8(b, names[k].cp);
			return 1 + n;
		}
	}
	return 0;
}

/* Whether s[i..] opens the element name (case-insensitive), "<name" then
 * a space, "/" or ">". */
static bool
is_tag(const char *s, size_t i, size_t len, const char *name)
{
	size_t n = strlen(name);

	if (len - i < n + 2 || s[i] != '<' ||
	    strncasecmp(s + i + 1, name, n) != 0)
		return false;
	return strchr(" \t\r\n/>", s[i + 1 + n]) != NULL;
}

/* HTML as text: tags dropped, the contents of head, style and script
 * elements and comments dropped, entities decoded. Not a parser: what a
 * preview needs. */
static char *
html_text(const char *s, size_t len)
{
	static const char *const hidden[] = { "head", "style", "script",
	    "title" };
	struct mime_str b;
	size_t i = 0;

	mime_str_init(&b);
	while (i < len) {
		const char *end;
		size_t k, n;

		if (s[i] == '&' && (n = html_entity(s, i, len, &b)) > 0) {
			i += n;
			continue;
		}
		if (s[i] != '<') {
			mime_str_addc(&b, s[i++]);
			continue;
		}
		if (len - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
			end = memmem(s + i + 4, len - i - 4, "-->", 3);
			i = end != NULL ? (size_t)(end - s) + 3 : len;
			continue;
		}
		for (k = 0; k < ARRAY_LEN(hidden); k++)
			if (is_tag(s, i, len, hidden[k]))
				break;
		if (k < ARRAY_LEN(hidden)) {
			/* Skip to the matching end tag. */
			size_t hn = strlen(hidden[k]);
			size_t j = i + 1;

			for (; j + hn + 2 < len; j++)
				if (s[j] == '<' && s[j + 1] == '/' &&
				    strncasecmp(s + j + 2, hidden[k], hn) == 0)
					break;
			i = j;
		}
		end = memchr(s + i, '>', len - i);
		i = end != NULL ? (size_t)(end - s) + 1 : len;
		/* A tag separates words ("<br>", "</p>"). */
		mime_str_addc(&b, ' ');
	}
	return mime_str_take(&b);
}

/* At most MIME_MAX_PREVIEW characters of s with white space (and control
 * characters) collapsed to single spaces, trimmed. */
static char *
preview_cut(const char *s)
{
	struct mime_str b;
	size_t chars = 0;
	bool is_space = true;	/* drops leading space */

	mime_str_init(&b);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if (*p <= ' ' || *p == 0x7f) {
			is_space = true;
			continue;
		}
		if ((*p & 0xc0) != 0x80) {
			/* A new character, after a space when one is due;
			 * continuation bytes always follow their lead. */
			bool is_sep = is_space && b.len > 0;

			if (chars + 1 + is_sep > MIME_MAX_PREVIEW)
				break;
			if (is_sep) {
				mime_str_addc(&b, ' ');
				chars++;
			}
			chars++;
			is_space = false;
		}
		mime_str_addc(&b, (char)*p);
	}
	return mime_str_take(&b);
}

char *
mime_text_preview(struct mime_ctx *ctx)
{
	size_t pick = MIME_NONE;
	struct mime_str text;
	bool is_full = false;
	struct sink k = { &text, PREVIEW_SOURCE_MAX, &is_full };
	char *out, *plain;

	/* RFC 8970 §4.1: the first text part shown inline, text/plain
	 * before text/html (an alternative's plain version). */
	for (int pass = 0; pass < 2 && pick == MIME_NONE; pass++) {
		const char *want = pass == 0 ? "text/plain" : "text/html";

		for (size_t n = 0; n < ctx->nnodes; n++) {
			const struct mime_node *node = &ctx->nodes[n];

			if (node->kind == MIME_KIND_LEAF && !node->is_overflow &&
			    node->lc_type != NULL &&
			    strcmp(node->lc_type, want) == 0 &&
			    is_inline(node)) {
				pick = n;
				break;
			}
		}
	}
	if (pick == MIME_NONE)
		return xstrdup("");
	mime_str_init(&text);
	add_body_to(ctx, &ctx->nodes[pick], &k);
	plain = mime_str_take(&text);
	if (strcmp(ctx->nodes[pick].lc_type, "text/html") == 0) {
		char *t = html_text(plain, strlen(plain));

		free(plain);
		plain = t;
	}
	out = preview_cut(plain);
	free(plain);
	return out;
}

/* ---- Decoding for other layers (sieve) ------------------------------- */

char *
mime_header_decode(const char *v)
{
	mime_init();
	return mime_text_decode(v != NULL ? v : "");
}

char *
mime_body_decode(const char *data, size_t len, const char *cte,
    const char *charset, size_t max)
{
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	GMimeEncoding state;
	struct mime_str out;
	bool is_full = false;
	struct sink k;
	struct conv cv;
	char *buf;
	size_t m;

	if (cte != NULL) {
		if (strcasecmp(cte, "base64") == 0)
			enc = GMIME_CONTENT_ENCODING_BASE64;
		else if (strcasecmp(cte, "quoted-printable") == 0)
			enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	}
	mime_init();
	mime_str_init(&out);
	k = (struct sink){ &out, max, &is_full };
	conv_init(&cv, charset);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT) {
		conv_feed(&k, &cv, data, len, true);
	} else {
		g_mime_encoding_init_decode(&state, enc);
		m = g_mime_encoding_outlen(&state, len) + 16;
		buf = xmalloc(m);
		m = g_mime_encoding_flush(&state, data, len, buf);
		conv_feed(&k, &cv, buf, m, true);
		free(buf);
	}
	conv_deinit(&cv);
	return mime_str_take(&out);
}
