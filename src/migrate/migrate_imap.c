/*
 * migrate_imap: copying from an IMAP source (RFC 9051/3501). Login
 * (AUTHENTICATE PLAIN, LOGIN, or XOAUTH2/OAUTHBEARER with a token) after
 * TLS, LIST with special-use, then per folder: SELECT, the UIDs and flags
 * the source has (all of them, or with QRESYNC only what changed since the
 * last run, RFC 7162 CHANGEDSINCE and VANISHED), the bodies of the
 * messages the map does not know yet, flag changes, and what the source
 * deleted. The source's folder name (UTF-8) is the map's folder key.
 */
#include "migrate/migrate_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/mutf7.h"
#include "lib/util.h"

struct imap {
	struct migrate_conn *c;
	struct migrate_parser p;
	const struct migrate_options *o;
	unsigned tagn;
	char tag[16];
	/* Capabilities, as last heard. */
	bool has_starttls, has_condstore, has_qresync, has_special_use,
	    has_literal_plus, has_auth_plain, has_xoauth2, has_oauthbearer,
	    is_login_disabled, has_caps;
	bool is_qresync;	/* ENABLE QRESYNC answered */
	char *error;		/* into the result's error */
	size_t errlen;
	enum migrate_fail fail;
};

/* A source folder from LIST. */
struct folder {
	char *raw;		/* as the source spells it (for SELECT) */
	size_t raw_len;
	char *name;		/* UTF-8 */
	char delim;
	uint32_t attrs;
	bool is_raw_name;	/* not valid modified UTF-7 */
};

/* A message as the UID listing gives it. */
struct src_msg {
	uint32_t uid;
	uint32_t flags;
	char *keywords;
	uint64_t size;
	bool has_size;
};

static int
fail(struct imap *im, enum migrate_fail f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct imap *im, enum migrate_fail f, const char *fmt, ...)
{
	va_list ap;

	if (im->fail == MIGRATE_OK) {
		va_start(ap, fmt);
		vsnprintf(im->error, im->errlen, fmt, ap);
		va_end(ap);
		im->fail = f;
	}
	return -1;
}

/* The next response, reading as needed. */
static int
resp_next(struct imap *im, struct migrate_resp *r)
{
	for (;;) {
		enum parse_rc rc = migrate_parser_feed(&im->p, &im->c->in, r);
		ssize_t n;

		if (rc == PARSE_DONE) {
			if (r->status == MIGRATE_STATUS_BYE &&
			    r->kind == MIGRATE_RESP_UNTAGGED)
				return fail(im, MIGRATE_FAIL_PROTOCOL,
				    "the source closed the session: %s",
				    r->text);
			return 0;
		}
		if (rc == PARSE_ERROR)
			return fail(im, MIGRATE_FAIL_PROTOCOL,
			    "the source sent a response we refuse: %s",
			    im->p.error);
		n = migrate_conn_read(im->c);
		if (n <= 0)
			return fail(im, MIGRATE_FAIL_CONNECT, n == 0 ?
			    "the source closed the connection" :
			    "reading from the source failed or timed out");
	}
}

static void
resp_done(struct imap *im)
{
	migrate_parser_consume(&im->p, &im->c->in);
}

static int
send_raw(struct imap *im, const void *data, size_t len)
{
	if (migrate_conn_write(im->c, data, len) < 0)
		return fail(im, MIGRATE_FAIL_CONNECT,
		    "writing to the source failed or timed out");
	return 0;
}

static void
caps_read(struct imap *im, const char *text)
{
	const char *p = text;

	im->has_starttls = im->has_condstore = im->has_qresync = false;
	im->has_special_use = im->has_literal_plus = false;
	im->has_auth_plain = im->has_xoauth2 = im->has_oauthbearer = false;
	im->is_login_disabled = false;
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
#define IS(w) (n == strlen(w) && strncasecmp(p, w, n) == 0)
		if (IS("STARTTLS"))
			im->has_starttls = true;
		else if (IS("CONDSTORE"))
			im->has_condstore = true;
		else if (IS("QRESYNC"))
			im->has_qresync = im->has_condstore = true;
		else if (IS("SPECIAL-USE"))
			im->has_special_use = true;
		else if (IS("LITERAL+"))
			im->has_literal_plus = true;
		else if (IS("AUTH=PLAIN"))
			im->has_auth_plain = true;
		else if (IS("AUTH=XOAUTH2"))
			im->has_xoauth2 = true;
		else if (IS("AUTH=OAUTHBEARER"))
			im->has_oauthbearer = true;
		else if (IS("LOGINDISABLED"))
			im->is_login_disabled = true;
#undef IS
		p += n;
	}
	im->has_caps = true;
}

/* Handles an untagged response for a command: returns 0 to go on. */
typedef int (*untagged_fn)(struct imap *im, void *arg,
    const struct migrate_resp *r);

/* Sends "TAG text\r\n" (text may be NULL when the command was sent in
 * parts by the caller, who then passes is_sent) and reads responses until
 * the tagged one; returns its status, or -1 on a failure. */
static int
cmd_wait(struct imap *im, untagged_fn fn, void *arg,
    enum migrate_status *status_out, char *text_out, size_t text_len)
{
	struct migrate_resp r;

	for (;;) {
		if (resp_next(im, &r) < 0)
			return -1;
		if (r.kind == MIGRATE_RESP_TAGGED) {
			if (strcmp(r.tag, im->tag) != 0) {
				resp_done(im);
				return fail(im, MIGRATE_FAIL_PROTOCOL,
				    "the source answered a command we did not "
				    "send");
			}
			*status_out = r.status;
			if (text_out != NULL)
				snprintf(text_out, text_len, "%s", r.text);
			if (strcmp(r.code, "CAPABILITY") == 0)
				caps_read(im, r.code_args);
			resp_done(im);
			return 0;
		}
		if (r.kind == MIGRATE_RESP_UNTAGGED) {
			if (r.status == MIGRATE_STATUS_NONE && r.n >= 1 &&
			    is_migrate_val_atom(r.items, "CAPABILITY")) {
				char caps[4096];
				size_t o = 0;

				for (const struct migrate_val *v =
				    r.items->next; v; v = v->next)
					if (v->kind == MIGRATE_VAL_ATOM &&
					    o + v->len + 2 < sizeof(caps)) {
						memcpy(caps + o, v->s, v->len);
						o += v->len;
						caps[o++] = ' ';
					}
				caps[o] = '\0';
				caps_read(im, caps);
			}
			if (fn != NULL && fn(im, arg, &r) < 0) {
				resp_done(im);
				return -1;
			}
		}
		/* A continuation request here is unexpected: the commands
		 * that need one read it themselves. */
		resp_done(im);
	}
}

static void
tag_next(struct imap *im)
{
	snprintf(im->tag, sizeof(im->tag), "M%u", ++im->tagn);
}

static int
cmd(struct imap *im, untagged_fn fn, void *arg, enum migrate_status *st,
    char *text, size_t tlen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int
cmd(struct imap *im, untagged_fn fn, void *arg, enum migrate_status *st,
    char *text, size_t tlen, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	tag_next(im);
	n = snprintf(line, sizeof(line), "%s ", im->tag);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n + 2 >= (int)sizeof(line))
		panic("migrate: command too long");
	memcpy(line + n, "\r\n", 2);
	if (send_raw(im, line, (size_t)n + 2) < 0)
		return -1;
	return cmd_wait(im, fn, arg, st, text, tlen);
}

/* Waits for a continuation request ("+ ..."); the text is returned. */
static int
cont_wait(struct imap *im, enum migrate_status *st, char *text,
    size_t tlen)
{
	struct migrate_resp r;

	for (;;) {
		if (resp_next(im, &r) < 0)
			return -1;
		if (r.kind == MIGRATE_RESP_CONTINUE) {
			snprintf(text, tlen, "%s", r.text);
			resp_done(im);
			return 1;
		}
		if (r.kind == MIGRATE_RESP_TAGGED) {
			*st = r.status;
			snprintf(text, tlen, "%s", r.text);
			resp_done(im);
			return 0;
		}
		resp_done(im);
	}
}

/* Whether a string can go as a quoted string (RFC 9051 quoted). */
static bool
is_quotable(const char *s, size_t len)
{
	if (len > 1000)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n' ||
		    (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* Sends "TAG prefix STRING suffix\r\n" with STRING quoted or as a literal
 * (LITERAL+ when the source has it, else waiting for "+"), then waits for
 * the tagged response. */
static int
cmd_string(struct imap *im, untagged_fn fn, void *arg,
    enum migrate_status *st, char *text, size_t tlen, const char *prefix,
    const char *s, size_t len, const char *suffix)
{
	struct buf out;
	int rc;

	tag_next(im);
	buf_init(&out, len * 2 + 4096);
	buf_append(&out, im->tag, strlen(im->tag));
	buf_append(&out, " ", 1);
	buf_append(&out, prefix, strlen(prefix));
	if (is_quotable(s, len)) {
		buf_append(&out, "\"", 1);
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_append(&out, "\\", 1);
			buf_append(&out, s + i, 1);
		}
		buf_append(&out, "\"", 1);
	} else {
		char lit[32];

		snprintf(lit, sizeof(lit), "{%zu%s}\r\n", len,
		    im->has_literal_plus ? "+" : "");
		buf_append(&out, lit, strlen(lit));
		if (!im->has_literal_plus) {
			char t[256];

			if (send_raw(im, out.data, out.len) < 0) {
				buf_deinit(&out);
				return -1;
			}
			buf_clear(&out);
			rc = cont_wait(im, st, t, sizeof(t));
			if (rc <= 0) {
				buf_deinit(&out);
				if (rc == 0 && text != NULL)
					snprintf(text, tlen, "%s", t);
				return rc;
			}
		}
		buf_append(&out, s, len);
	}
	buf_append(&out, suffix, strlen(suffix));
	buf_append(&out, "\r\n", 2);
	rc = send_raw(im, out.data, out.len);
	secret_wipe(out.data, out.size);	/* may hold a password */
	buf_deinit(&out);
	if (rc < 0)
		return -1;
	return cmd_wait(im, fn, arg, st, text, tlen);
}

/* ---- Greeting, TLS, login --------------------------------------------- */

static int
greeting(struct imap *im, bool *is_preauth)
{
	struct migrate_resp r;

	if (resp_next(im, &r) < 0)
		return -1;
	if (r.kind != MIGRATE_RESP_UNTAGGED ||
	    (r.status != MIGRATE_STATUS_OK &&
	    r.status != MIGRATE_STATUS_PREAUTH)) {
		resp_done(im);
		return fail(im, MIGRATE_FAIL_PROTOCOL, "the source's greeting "
		    "is not an IMAP greeting");
	}
	*is_preauth = r.status == MIGRATE_STATUS_PREAUTH;
	if (strcmp(r.code, "CAPABILITY") == 0)
		caps_read(im, r.code_args);
	resp_done(im);
	return 0;
}

static int
capability(struct imap *im)
{
	enum migrate_status st;

	if (cmd(im, NULL, NULL, &st, NULL, 0, "CAPABILITY") < 0)
		return -1;
	if (st != MIGRATE_STATUS_OK)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "CAPABILITY failed");
	return 0;
}

/* One SASL exchange with an initial response sent after the "+". */
static int
authenticate(struct imap *im, const char *mech, const char *ir, size_t len,
    enum migrate_status *st, char *text, size_t tlen)
{
	char line[64];
	char *b64;
	int rc;

	tag_next(im);
	snprintf(line, sizeof(line), "%s AUTHENTICATE %s\r\n", im->tag, mech);
	if (send_raw(im, line, strlen(line)) < 0)
		return -1;
	rc = cont_wait(im, st, text, tlen);
	if (rc <= 0)
		return rc;
	b64 = base64_encode(ir, len, false);
	rc = send_raw(im, b64, strlen(b64));
	secret_wipe(b64, strlen(b64));
	free(b64);
	if (rc < 0 || send_raw(im, "\r\n", 2) < 0)
		return -1;
	for (;;) {
		rc = cont_wait(im, st, text, tlen);
		if (rc <= 0)
			return rc;
		/* An error challenge (XOAUTH2's JSON): an empty answer ends
		 * the exchange with the tagged NO (RFC 7628 §3.2.3). */
		if (send_raw(im, "\r\n", 2) < 0)
			return -1;
	}
}

static int
login(struct imap *im)
{
	const struct migrate_options *o = im->o;
	const char *user = o->url->user;
	enum migrate_status st = MIGRATE_STATUS_NONE;
	char text[512] = "";
	int rc;

	if (o->oauth_token != NULL) {
		char *ir;
		const char *mech;

		if (im->has_oauthbearer) {
			mech = "OAUTHBEARER";
			ir = xasprintf("n,a=%s,\001host=%s\001port=%u\001"
			    "auth=Bearer %s\001\001", user, o->url->host,
			    (unsigned)o->url->port, o->oauth_token);
		} else if (im->has_xoauth2) {
			mech = "XOAUTH2";
			ir = xasprintf("user=%s\001auth=Bearer %s\001\001",
			    user, o->oauth_token);
		} else {
			return fail(im, MIGRATE_FAIL_AUTH, "the source offers "
			    "neither OAUTHBEARER nor XOAUTH2");
		}
		rc = authenticate(im, mech, ir, strlen(ir), &st, text,
		    sizeof(text));
		secret_wipe(ir, strlen(ir));
		free(ir);
	} else if (im->has_auth_plain) {
		size_t ul = strlen(user), pl = strlen(o->password);
		char *ir = xmalloc(ul + pl + 2);

		ir[0] = '\0';
		memcpy(ir + 1, user, ul);
		ir[1 + ul] = '\0';
		memcpy(ir + 2 + ul, o->password, pl);
		rc = authenticate(im, "PLAIN", ir, ul + pl + 2, &st, text,
		    sizeof(text));
		secret_wipe(ir, ul + pl + 2);
		free(ir);
	} else if (!im->is_login_disabled) {
		char *u = NULL;
		size_t ul = strlen(user);

		/* LOGIN user password: the user as a quoted string, the
		 * password through cmd_string (quoted or literal). */
		if (!is_quotable(user, ul) || strchr(user, '"') ||
		    strchr(user, '\\'))
			return fail(im, MIGRATE_FAIL_AUTH, "the user name "
			    "cannot be sent with LOGIN");
		u = xasprintf("LOGIN \"%s\" ", user);
		rc = cmd_string(im, NULL, NULL, &st, text, sizeof(text), u,
		    o->password, strlen(o->password), "");
		free(u);
	} else {
		return fail(im, MIGRATE_FAIL_AUTH, "the source allows no "
		    "login we can use (LOGINDISABLED, no AUTH=PLAIN)");
	}
	if (rc < 0)
		return -1;
	if (st != MIGRATE_STATUS_OK)
		return fail(im, MIGRATE_FAIL_AUTH, "the source refused the "
		    "login of %s: %s", user, text[0] ? text : "no reason");
	return 0;
}

/* ---- LIST ------------------------------------------------------------- */

struct folders {
	struct folder *v;
	size_t n, cap;
};

static void
folders_free(struct folders *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].raw);
		free(fs->v[i].name);
	}
	free(fs->v);
}

static int
list_cb(struct imap *im, void *arg, const struct migrate_resp *r)
{
	struct folders *fs = arg;
	struct migrate_list l;
	struct folder *f;

	if (!is_migrate_val_atom(r->items, "LIST"))
		return 0;
	if (migrate_list_read(r, &l) < 0)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "a LIST response "
		    "that does not parse");
	if (fs->n >= MIGRATE_FOLDERS_MAX)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "the source lists more "
		    "than %u folders (MIGRATE_FOLDERS_MAX)",
		    MIGRATE_FOLDERS_MAX);
	if (fs->n == fs->cap) {
		fs->cap = fs->cap ? fs->cap * 2 : 32;
		fs->v = xrealloc(fs->v, fs->cap * sizeof(*fs->v));
	}
	f = &fs->v[fs->n++];
	memset(f, 0, sizeof(*f));
	f->raw = xstrndup(l.name, l.name_len);
	f->raw_len = l.name_len;
	f->delim = l.delim;
	f->attrs = l.attrs;
	f->name = memchr(l.name, '\0', l.name_len) == NULL ?
	    mutf7_decode(f->raw) : NULL;
	if (f->name == NULL) {
		/* Not modified UTF-7: keep the bytes, control characters
		 * and NULs made visible. */
		f->name = xmalloc(l.name_len + 1);
		for (size_t i = 0; i < l.name_len; i++) {
			unsigned char ch = (unsigned char)l.name[i];

			f->name[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
		}
		f->name[l.name_len] = '\0';
		f->is_raw_name = true;
	}
	return 0;
}

/* ---- One folder ------------------------------------------------------- */

struct select_info {
	uint32_t uidvalidity;
	uint64_t highestmodseq;
	uint32_t exists;
};

static int
select_cb(struct imap *im, void *arg, const struct migrate_resp *r)
{
	struct select_info *si = arg;
	uint64_t n;

	(void)im;
	if (r->status == MIGRATE_STATUS_OK) {
		if (strcmp(r->code, "UIDVALIDITY") == 0 &&
		    migrate_text_u64(r->code_args, strlen(r->code_args), &n) &&
		    n <= UINT32_MAX)
			si->uidvalidity = (uint32_t)n;
		else if (strcmp(r->code, "HIGHESTMODSEQ") == 0 &&
		    migrate_text_u64(r->code_args, strlen(r->code_args), &n))
			si->highestmodseq = n;
	} else if (r->status == MIGRATE_STATUS_NONE && r->n == 2 &&
	    is_migrate_val_atom(r->items->next, "EXISTS")) {
		migrate_val_u32(r->items, &si->exists);
	}
	return 0;
}

/* The folder's map, current UIDVALIDITY by UID. */
struct map {
	struct store_migrate_entry *all;
	size_t nall;
	struct {
		uint32_t uid;
		size_t i;	/* into all */
		bool is_seen;
	} *cur;
	size_t ncur;
	size_t nold;		/* entries of other UIDVALIDITYs */
	bool *is_used;		/* old entries matched again */
};

static int
cur_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static ssize_t
map_find(const struct map *m, uint32_t uid)
{
	size_t lo = 0, hi = m->ncur;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->cur[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->ncur && m->cur[lo].uid == uid ? (ssize_t)lo : -1;
}

struct listing {
	struct src_msg *v;
	size_t n, cap;
	struct map *map;
	struct migrate_folder_result *fr;
	size_t max;		/* EXISTS plus a slack, at most the cap */
	size_t keyword_bytes;
	bool is_bad;
};

static int
listing_cb(struct imap *im, void *arg, const struct migrate_resp *r)
{
	struct listing *ls = arg;
	const struct migrate_val *set;
	struct migrate_fetch f;
	bool is_truncated;

	if ((set = migrate_vanished_set(r)) != NULL)
		return 0;	/* handled by vanished_cb */
	if (r->n < 2 || !is_migrate_val_atom(r->items->next, "FETCH"))
		return 0;
	if (migrate_fetch_read(r, &f, &is_truncated) < 0 || f.uid == 0)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "a FETCH response "
		    "that does not parse");
	if (ls->n >= ls->max)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "the source lists more "
		    "messages than the folder's EXISTS allows (%zu; "
		    "MIGRATE_MESSAGES_SLACK, MIGRATE_MESSAGES_MAX)", ls->max);
	ls->keyword_bytes += strlen(f.keywords);
	if (ls->keyword_bytes > MIGRATE_FOLDER_KEYWORD_BYTES_MAX)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "the source's keywords "
		    "of one folder are over %u bytes "
		    "(MIGRATE_FOLDER_KEYWORD_BYTES_MAX)",
		    MIGRATE_FOLDER_KEYWORD_BYTES_MAX);
	if (ls->n == ls->cap) {
		ls->cap = ls->cap ? ls->cap * 2 : 256;
		ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
	}
	ls->v[ls->n++] = (struct src_msg){
		.uid = f.uid, .flags = f.flags,
		.keywords = f.keywords[0] ? xstrdup(f.keywords) : NULL,
		.size = f.size, .has_size = f.has_size,
	};
	return 0;
}

struct vanished {
	struct map *map;
	uint64_t n;
	struct imap *im;
};

static void
vanished_range(void *arg, uint32_t lo, uint32_t hi)
{
	struct vanished *vn = arg;
	struct map *m = vn->map;
	size_t a = 0, b = m->ncur;

	while (a < b) {
		size_t mid = (a + b) / 2;

		if (m->cur[mid].uid < lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (; a < m->ncur && m->cur[a].uid <= hi; a++)
		m->cur[a].is_seen = false;
}

static int
vanished_cb(struct imap *im, void *arg, const struct migrate_resp *r)
{
	struct listing *ls = arg;
	const struct migrate_val *set = migrate_vanished_set(r);
	struct vanished vn = { .map = ls->map, .im = im };

	if (set == NULL)
		return listing_cb(im, arg, r);
	if (migrate_uidset_read(set->s, set->len, vanished_range, &vn) < 0)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "a VANISHED set that "
		    "does not parse");
	return 0;
}

static int
src_cmp(const void *a, const void *b)
{
	const struct src_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Copies the bodies of the listed messages in chunks. */
struct copy {
	struct imap *im;
	struct migrate_sink *sink;
	struct migrate_folder_result *fr;
	struct map *map;
	const char *source, *folder, *target;
	uint32_t uidvalidity;
	uint64_t done, total;
	const uint32_t *want;	/* this chunk's UIDs, ascending */
	bool *got;		/* got[i]: want[i] came already */
	size_t nwant;
};

static bool
is_same_id(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
body_cb(struct imap *im, void *arg, const struct migrate_resp *r)
{
	struct copy *cp = arg;
	struct migrate_fetch f;
	struct store_migrate_entry e;
	bool is_truncated;
	char key[16], hash[65];
	char *mid;

	if (r->n < 2 || !is_migrate_val_atom(r->items->next, "FETCH"))
		return 0;
	if (migrate_fetch_read(r, &f, &is_truncated) < 0 || f.uid == 0)
		return fail(im, MIGRATE_FAIL_PROTOCOL, "a FETCH response "
		    "that does not parse");
	if (f.body == NULL)
		return 0;	/* a flag update the server volunteered */
	/* Only what this chunk asked for, each once: a UID we did not ask
	 * for, or one sent twice, is the source's mistake (or a hostile
	 * one's injection), counted as a mismatch and dropped. */
	{
		size_t lo = 0, hi = cp->nwant;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (cp->want[mid] < f.uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == cp->nwant || cp->want[lo] != f.uid ||
		    cp->got[lo]) {
			cp->fr->mismatches++;
			return 0;
		}
		cp->got[lo] = true;
	}
	if (map_find(cp->map, f.uid) >= 0)
		return 0;	/* copied already (a repeated response) */
	if (f.has_size && f.size != f.body_len)
		cp->fr->mismatches++;
	snprintf(key, sizeof(key), "%u", f.uid);
	migrate_hash(f.body, f.body_len, hash);
	mid = migrate_message_id(f.body, f.body_len);
	e = (struct store_migrate_entry){
		.uidvalidity = cp->uidvalidity, .key = key, .flags = f.flags,
		.keywords = f.keywords[0] ? f.keywords : NULL,
		.message_id = mid, .hash = hash, .size = f.body_len,
	};
	/* After a UIDVALIDITY change: the same bytes (and Message-ID)
	 * copied under the old UIDVALIDITY are this message. */
	for (size_t i = 0; cp->map->nold > 0 && i < cp->map->nall; i++) {
		struct store_migrate_entry *old = &cp->map->all[i];
		enum store_err err;

		if (old->uidvalidity == cp->uidvalidity ||
		    cp->map->is_used[i] || old->hash == NULL ||
		    strcmp(old->hash, hash) != 0 ||
		    !is_same_id(old->message_id, mid))
			continue;
		cp->map->is_used[i] = true;
		e.mailbox = old->mailbox;
		e.uid = old->uid;
		/* The flags stay as the old copy has them; the next run
		 * brings the source's if they differ. */
		e.flags = old->flags;
		e.keywords = old->keywords;
		if (store_migrate_put(cp->sink->st, cp->sink->account,
		    cp->source, cp->folder, &e, &err) < 0)
			cp->fr->failed++;
		else
			cp->fr->rematched++;
		free(mid);
		goto progress;
	}
	if (migrate_sink_put(cp->sink, cp->fr, cp->source, cp->folder,
	    cp->target, f.body, f.body_len, f.flags,
	    f.keywords[0] ? f.keywords : NULL, f.has_date ? f.internal_date :
	    0, &e) < 0) {
		free(mid);
		return fail(im, MIGRATE_FAIL_STORE, "the store is closing");
	}
	free(mid);
progress:
	cp->done++;
	if (im->o->progress != NULL)
		im->o->progress(im->o->progress_arg, cp->target, cp->done,
		    cp->total);
	return 0;
}

/* Appends "a,b:c,..." of uids[0..n) to out (at most cap bytes). */
static size_t
uidset_write(char *out, size_t cap, const uint32_t *uids, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		size_t j = i;
		int w;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			w = snprintf(out + o, cap - o, "%s%u:%u", o ? "," : "",
			    uids[i], uids[j]);
		else
			w = snprintf(out + o, cap - o, "%s%u", o ? "," : "",
			    uids[i]);
		if (w < 0 || (size_t)w >= cap - o)
			panic("migrate: uid set overflow");
		o += (size_t)w;
		i = j + 1;
	}
	return o;
}

static int
folder_run(struct imap *im, struct store *st, int64_t account,
    const char *source, struct folder *fo, struct migrate_folder_result *fr,
    struct migrate_sink *sink)
{
	const struct migrate_options *o = im->o;
	struct select_info si = { 0 };
	struct listing ls = { 0 };
	struct map map = { 0 };
	enum migrate_status stat;
	enum store_err err;
	uint32_t prev_uv = 0, *todo = NULL;
	uint64_t prev_modseq = 0;
	size_t ntodo = 0;
	char text[512];
	bool is_mapped, is_changedsince = false;
	int rc = -1;
	enum store_special special = STORE_SPECIAL_NONE;

	fr->source = xstrdup(fo->name);
	if (fo->attrs & MIGRATE_LIST_NOSELECT) {
		fr->note = xstrdup("not selectable at the source: skipped");
		return 0;
	}
	fr->target = migrate_name_map(fo->name, fo->delim, fo->attrs,
	    &is_mapped);
	if (fo->attrs & MIGRATE_LIST_SENT)
		special = STORE_SPECIAL_SENT;
	else if (fo->attrs & MIGRATE_LIST_DRAFTS)
		special = STORE_SPECIAL_DRAFTS;
	else if (fo->attrs & MIGRATE_LIST_TRASH)
		special = STORE_SPECIAL_TRASH;
	else if (fo->attrs & MIGRATE_LIST_JUNK)
		special = STORE_SPECIAL_JUNK;
	else if (fo->attrs & MIGRATE_LIST_ARCHIVE)
		special = STORE_SPECIAL_ARCHIVE;
	if (is_mapped || fo->is_raw_name)
		fr->note = xasprintf("name mapped to one the store takes%s",
		    fo->is_raw_name ? " (not valid modified UTF-7)" : "");
	if (strcmp(fr->target, "INBOX") != 0 &&
	    store_mailbox_create(st, account, fr->target, special, &err) < 0 &&
	    err != STORE_EXISTS) {
		free(fr->note);
		fr->note = xasprintf("the store refuses the name %s: %s",
		    fr->target, store_err_text(err));
		free(fr->target);
		fr->target = NULL;
		return 0;
	}

	if (cmd_string(im, select_cb, &si, &stat, text, sizeof(text),
	    "SELECT ", fo->raw, fo->raw_len,
	    im->has_condstore && !im->is_qresync ? " (CONDSTORE)" : "") < 0)
		return -1;
	if (stat != MIGRATE_STATUS_OK) {
		free(fr->note);
		fr->note = xasprintf("the source refused SELECT: %s", text);
		return 0;
	}
	fr->source_messages = si.exists;

	if (store_migrate_list(st, account, source, fo->name, &map.all,
	    &map.nall, &err) < 0)
		return fail(im, MIGRATE_FAIL_STORE, "cannot read the map: %s",
		    store_err_text(err));
	map.cur = xcalloc(map.nall + 1, sizeof(*map.cur));
	map.is_used = xcalloc(map.nall + 1, sizeof(*map.is_used));
	for (size_t i = 0; i < map.nall; i++) {
		uint64_t uid;

		if (map.all[i].uidvalidity != si.uidvalidity) {
			map.nold++;
			continue;
		}
		if (!migrate_text_u64(map.all[i].key, strlen(map.all[i].key),
		    &uid) || uid == 0 || uid > UINT32_MAX)
			continue;
		map.cur[map.ncur].uid = (uint32_t)uid;
		map.cur[map.ncur].i = i;
		map.ncur++;
	}
	if (map.ncur > 1)	/* qsort() must not see a NULL array */
		qsort(map.cur, map.ncur, sizeof(*map.cur), cur_cmp);
	if (store_migrate_folder_get(st, account, source, fo->name, &prev_uv,
	    &prev_modseq, &err) < 0 && err != STORE_NOT_FOUND) {
		fail(im, MIGRATE_FAIL_STORE, "cannot read the map: %s",
		    store_err_text(err));
		goto out;
	}

	/* RFC 7162 §3.2.5.2: with QRESYNC and a HIGHESTMODSEQ from the last
	 * run, the source says what changed since: flags and new messages
	 * (CHANGEDSINCE) and what it expunged (VANISHED). */
	ls.map = &map;
	ls.fr = fr;
	ls.max = si.exists < MIGRATE_MESSAGES_MAX - MIGRATE_MESSAGES_SLACK ?
	    (size_t)si.exists + MIGRATE_MESSAGES_SLACK : MIGRATE_MESSAGES_MAX;
	if (im->is_qresync && prev_uv == si.uidvalidity && prev_modseq > 0 &&
	    si.highestmodseq > 0 && map.nold == 0) {
		is_changedsince = true;
		for (size_t i = 0; i < map.ncur; i++)
			map.cur[i].is_seen = true;
		if (si.highestmodseq == prev_modseq) {
			fr->is_unchanged = true;
		} else if (cmd(im, vanished_cb, &ls, &stat, text,
		    sizeof(text), "UID FETCH 1:* (UID FLAGS RFC822.SIZE) "
		    "(CHANGEDSINCE %llu VANISHED)",
		    (unsigned long long)prev_modseq) < 0) {
			goto out;
		}
	} else if (si.exists > 0) {
		if (cmd(im, listing_cb, &ls, &stat, text, sizeof(text),
		    "UID FETCH 1:* (UID FLAGS RFC822.SIZE)") < 0)
			goto out;
	} else {
		stat = MIGRATE_STATUS_OK;
	}
	if (!fr->is_unchanged && stat != MIGRATE_STATUS_OK) {
		fail(im, MIGRATE_FAIL_PROTOCOL, "the source refused to list "
		    "%s: %s", fo->name, text);
		goto out;
	}
	if (ls.n > 1)
		qsort(ls.v, ls.n, sizeof(*ls.v), src_cmp);

	/* Known messages: flags that changed at the source since the last
	 * copy are set here (the source wins for what it changed; what was
	 * changed only here stays). New ones are copied below. */
	todo = xcalloc(ls.n + 1, sizeof(*todo));
	for (size_t i = 0; i < ls.n; i++) {
		struct src_msg *m = &ls.v[i];
		ssize_t k = map_find(&map, m->uid);
		struct store_migrate_entry *e;

		if (k < 0) {
			if (m->has_size && m->size > o->message_max) {
				fr->failed++;
				free(fr->note);
				fr->note = xasprintf("a message of %llu bytes "
				    "is over --max-message",
				    (unsigned long long)m->size);
				continue;
			}
			if (ntodo == 0 || todo[ntodo - 1] != m->uid)
				todo[ntodo++] = m->uid;
			continue;
		}
		map.cur[k].is_seen = true;
		e = &map.all[map.cur[k].i];
		if (e->flags != m->flags ||
		    !is_store_keywords_equal(e->keywords, m->keywords)) {
			struct store_change ch = {
				.mailbox = e->mailbox, .uids = &e->uid,
				.nuids = 1, .kind = STORE_CHANGE_FLAGS,
				.mode = STORE_FLAGS_REPLACE, .flags = m->flags,
				.keywords = m->keywords,
			};
			struct store_change_result cr;
			char *okw = e->keywords;

			if (store_change_commit(st, &ch, &cr) < 0 &&
			    cr.err != STORE_NOT_FOUND) {
				fr->failed++;
				store_change_result_deinit(&cr);
				continue;
			}
			store_change_result_deinit(&cr);
			e->flags = m->flags;
			e->keywords = m->keywords;
			if (store_migrate_put(st, account, source, fo->name, e,
			    &err) < 0)
				fr->failed++;
			else
				fr->flags_updated++;
			e->keywords = okw;
		}
	}

	/* New messages, in chunks, each stored as its FETCH completes. */
	{
		struct copy cp = {
			.im = im, .sink = sink, .fr = fr, .map = &map,
			.source = source, .folder = fo->name,
			.target = fr->target, .uidvalidity = si.uidvalidity,
			.total = ntodo,
		};
		enum { CHUNK = 100 };

		bool got[CHUNK];

		for (size_t i = 0; i < ntodo; i += CHUNK) {
			size_t n = ntodo - i < CHUNK ? ntodo - i : CHUNK;
			char set[CHUNK * 24];

			memset(got, 0, sizeof(got));
			cp.want = todo + i;
			cp.got = got;
			cp.nwant = n;
			uidset_write(set, sizeof(set), todo + i, n);
			if (cmd(im, body_cb, &cp, &stat, text, sizeof(text),
			    "UID FETCH %s (UID FLAGS INTERNALDATE RFC822.SIZE "
			    "BODY.PEEK[])", set) < 0)
				goto out;
			if (stat != MIGRATE_STATUS_OK) {
				fail(im, MIGRATE_FAIL_PROTOCOL, "the source "
				    "refused to send messages of %s: %s",
				    fo->name, text);
				goto out;
			}
		}
	}

	/* What the map knows and the source no longer has. */
	if (!fr->is_unchanged) {
		for (size_t k = 0; k < map.ncur; k++) {
			struct store_migrate_entry *e;

			if (map.cur[k].is_seen)
				continue;
			fr->deleted_at_source++;
			if (!o->is_delete)
				continue;
			e = &map.all[map.cur[k].i];
			struct store_change ch = {
				.mailbox = e->mailbox, .uids = &e->uid,
				.nuids = 1, .kind = STORE_CHANGE_EXPUNGE,
			};
			struct store_change_result cr;

			if (store_change_commit(st, &ch, &cr) < 0 &&
			    cr.err != STORE_NOT_FOUND) {
				store_change_result_deinit(&cr);
				fr->failed++;
				continue;
			}
			store_change_result_deinit(&cr);
			if (store_migrate_del(st, account, source, fo->name,
			    e->uidvalidity, e->key, &err) < 0)
				fr->failed++;
			else
				fr->deleted_here++;
		}
	}
	migrate_sink_drain(sink);

	/* Only a complete folder moves the marks: a failure leaves the next
	 * run to look at everything again. */
	if (fr->failed == 0) {
		for (size_t i = 0; i < map.nall && map.nold > 0; i++) {
			uint32_t uv = map.all[i].uidvalidity;
			bool is_first = true;

			if (uv == si.uidvalidity)
				continue;
			for (size_t j = 0; j < i; j++)
				if (map.all[j].uidvalidity == uv)
					is_first = false;
			if (is_first)
				store_migrate_del(st, account, source,
				    fo->name, uv, NULL, &err);
		}
		/* Messages deleted at the source but kept here are told of
		 * at every run: without a HIGHESTMODSEQ the next run lists
		 * the folder whole and finds them again (VANISHED would
		 * name them only once). */
		bool is_pending = fr->deleted_at_source > fr->deleted_here;

		if (store_migrate_folder_set(st, account, source, fo->name,
		    si.uidvalidity, im->is_qresync && !is_pending ?
		    si.highestmodseq : 0, &err) < 0) {
			fail(im, MIGRATE_FAIL_STORE, "cannot write the map: %s",
			    store_err_text(err));
			goto out;
		}
	}
	(void)is_changedsince;
	rc = 0;
out:
	migrate_sink_drain(sink);
	for (size_t i = 0; i < ls.n; i++)
		free(ls.v[i].keywords);
	free(ls.v);
	free(todo);
	store_migrate_list_free(&map.all, map.nall);
	free(map.cur);
	free(map.is_used);
	return rc;
}

int
migrate_imap_run(struct migrate_conn *c, struct store *st, int64_t account,
    const struct migrate_options *o, const char *source,
    struct migrate_result *r)
{
	struct imap im = {
		.c = c, .o = o, .error = r->error, .errlen = sizeof(r->error),
	};
	struct folders fs = { 0 };
	struct migrate_sink sink;
	enum migrate_status stat;
	char text[512];
	bool is_preauth = false;
	int rc = -1;

	migrate_parser_init(&im.p, MIGRATE_LINE_MAX, (size_t)o->message_max);
	if (migrate_sink_init(&sink, st, account) < 0) {
		migrate_parser_deinit(&im.p);
		snprintf(r->error, sizeof(r->error), "cannot make an event "
		    "base");
		r->fail = MIGRATE_FAIL_STORE;
		return -1;
	}
	if (greeting(&im, &is_preauth) < 0)
		goto out;
	/* A PREAUTH greeting on a plain connection would skip STARTTLS:
	 * anyone on the path could answer for the source. */
	if (!c->tls && is_preauth && !o->is_insecure) {
		fail(&im, MIGRATE_FAIL_CONNECT, "the server logged us in "
		    "before TLS (PREAUTH): use imaps://, or --insecure");
		goto out;
	}
	if (!c->tls && !is_preauth) {
		if (!im.has_caps && capability(&im) < 0)
			goto out;
		if (im.has_starttls) {
			if (cmd(&im, NULL, NULL, &stat, text, sizeof(text),
			    "STARTTLS") < 0)
				goto out;
			if (stat != MIGRATE_STATUS_OK) {
				fail(&im, MIGRATE_FAIL_CONNECT, "STARTTLS "
				    "refused: %s", text);
				goto out;
			}
			/* RFC 9051 §6.2.1: what came before TLS is
			 * forgotten, capabilities included. */
			migrate_parser_deinit(&im.p);
			migrate_parser_init(&im.p, MIGRATE_LINE_MAX,
			    (size_t)o->message_max);
			if (migrate_conn_tls(c, o->ca_file, o->is_insecure_tls,
			    r->error, sizeof(r->error)) < 0) {
				im.fail = MIGRATE_FAIL_CONNECT;
				goto out;
			}
			im.has_caps = false;
		} else if (!o->is_insecure) {
			fail(&im, MIGRATE_FAIL_CONNECT, "the source does not "
			    "offer STARTTLS: use imaps://, or --insecure on a "
			    "network you trust");
			goto out;
		}
	}
	if (!im.has_caps && capability(&im) < 0)
		goto out;
	if (!is_preauth && login(&im) < 0)
		goto out;
	if (capability(&im) < 0)
		goto out;
	r->has_condstore = im.has_condstore;
	r->has_qresync = im.has_qresync;
	if (im.has_qresync) {
		if (cmd(&im, NULL, NULL, &stat, text, sizeof(text),
		    "ENABLE QRESYNC") < 0)
			goto out;
		im.is_qresync = stat == MIGRATE_STATUS_OK;
	}
	if (cmd(&im, list_cb, &fs, &stat, text, sizeof(text),
	    im.has_special_use ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)" :
	    "LIST \"\" \"*\"") < 0)
		goto out;
	if (stat != MIGRATE_STATUS_OK) {
		fail(&im, MIGRATE_FAIL_PROTOCOL, "LIST failed: %s", text);
		goto out;
	}
	r->folders = xcalloc(fs.n + 1, sizeof(*r->folders));
	for (size_t i = 0; i < fs.n; i++) {
		r->nfolders++;
		if (folder_run(&im, st, account, source, &fs.v[i],
		    &r->folders[i], &sink) < 0)
			goto out;
	}
	/* The answer (BYE, then OK) is not waited for: everything is
	 * copied already. */
	tag_next(&im);
	snprintf(text, sizeof(text), "%s LOGOUT\r\n", im.tag);
	(void)migrate_conn_write(c, text, strlen(text));
	rc = 0;
out:
	migrate_sink_deinit(&sink);
	migrate_parser_deinit(&im.p);
	folders_free(&fs);
	if (rc < 0)
		r->fail = im.fail != MIGRATE_OK ? im.fail :
		    MIGRATE_FAIL_PROTOCOL;
	return rc;
}
