#include "mime/mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/*
 * Why our own address parser: ENVELOPE carries each display name as
 * written, encoded words and all, for the client to decode (RFC 9051
 * §7.5.2), while GMime's parser hands b names already decoded to UTF-8.
 * The grammar is RFC 5322 §3.4 with its obsolete forms; broken addresses
 * are repaired the way Dovecot does, so that clients see the same thing:
 * a missing local part or domain becomes MISSING_MAILBOX or MISSING_DOMAIN,
 * a comment after a bare address is its display name, and garbage is
 * skipped up to the next comma.
 */

struct alex {
	const unsigned char *p;
	const unsigned char *end;
	struct mime_str comment;	/* the last comment skipped */
	bool has_comment;
	bool has_dropped;	/* bytes were skipped as garbage */
};

struct addr {
	char *name;
	char *route;
	char *mailbox;
	char *domain;
};

static bool
is_at(const struct alex *lx, char c)
{
	return lx->p < lx->end && *lx->p == (unsigned char)c;
}

/* RFC 5322 §3.2.3 atext; 8-bit bytes are let through (RFC 6532). */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* Skips white space and comments; remembers the text of the last
 * outermost comment, quoted pairs resolved. */
static void
skip_cfws(struct alex *lx)
{
	while (lx->p < lx->end) {
		unsigned char c = *lx->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->p++;
			continue;
		}
		if (c != '(')
			return;
		size_t level = 0;

		lx->comment.len = 0;
		lx->has_comment = true;
		while (lx->p < lx->end) {
			c = *lx->p++;
			if (c == '\\' && lx->p < lx->end) {
				c = *lx->p++;
			} else if (c == '(') {
				if (level++ == 0)
					continue;
			} else if (c == ')' && --level == 0) {
				break;
			}
			mime_str_addc(&lx->comment, (char)c);
		}
	}
}

/* Appends a quoted string's content (at its opening quote) to b. */
static void
read_quoted(struct alex *lx, struct mime_str *b)
{
	lx->p++;
	while (lx->p < lx->end) {
		unsigned char c = *lx->p++;

		if (c == '"')
			return;
		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		mime_str_addc(b, (char)c);
	}
}

/* Reads a phrase (RFC 5322 §3.2.5, obsolete dots included): its words
 * joined by single spaces. Returns whether there was a word. */
static bool
read_phrase(struct alex *lx, struct mime_str *b)
{
	bool any = false;

	for (;;) {
		skip_cfws(lx);
		if (lx->p == lx->end)
			break;
		if (*lx->p != '"' && *lx->p != '.' && !is_atext(*lx->p))
			break;
		if (any)
			mime_str_addc(b, ' ');
		any = true;
		if (*lx->p == '"') {
			read_quoted(lx, b);
			continue;
		}
		while (lx->p < lx->end && (*lx->p == '.' || is_atext(*lx->p)))
			mime_str_addc(b, (char)*lx->p++);
	}
	if (any && b->s == NULL)
		mime_str_add(b, "", 0);
	return any;
}

/* Reads word *("." word), a local part (RFC 5322 §3.4.1 with obs-local-
 * part). Returns whether there was one. */
static bool
read_local(struct alex *lx, struct mime_str *b)
{
	bool any = false;

	for (;;) {
		skip_cfws(lx);
		if (is_at(lx, '"')) {
			read_quoted(lx, b);
		} else if (lx->p < lx->end && is_atext(*lx->p)) {
			while (lx->p < lx->end && is_atext(*lx->p))
				mime_str_addc(b, (char)*lx->p++);
		} else {
			break;
		}
		any = true;
		skip_cfws(lx);
		if (!is_at(lx, '.'))
			break;
		mime_str_addc(b, '.');
		lx->p++;
	}
	if (any && b->s == NULL)
		mime_str_add(b, "", 0);
	return any;
}

/* Reads a domain after its '@': a dot-atom, or a domain literal kept
 * with its brackets. */
static void
read_domain(struct alex *lx, struct mime_str *b)
{
	skip_cfws(lx);
	if (is_at(lx, '[')) {
		while (lx->p < lx->end) {
			unsigned char c = *lx->p++;

			mime_str_addc(b, (char)c);
			if (c == '\\' && lx->p < lx->end)
				mime_str_addc(b, (char)*lx->p++);
			else if (c == ']')
				break;
		}
		skip_cfws(lx);
		return;
	}
	for (;;) {
		while (lx->p < lx->end && is_atext(*lx->p))
			mime_str_addc(b, (char)*lx->p++);
		skip_cfws(lx);
		if (!is_at(lx, '.'))
			break;
		mime_str_addc(b, '.');
		lx->p++;
		skip_cfws(lx);
	}
}

/* Reads an angle-addr at its '<': [route ":"] [local "@" domain] ">". */
static void
read_angle(struct alex *lx, struct addr *a)
{
	struct mime_str b;

	lx->p++;
	skip_cfws(lx);
	if (is_at(lx, '@')) {
		/* obs-route (RFC 5322 §4.4): "@a,@b:". */
		mime_str_init(&b);
		while (is_at(lx, '@') || is_at(lx, ',')) {
			if (*lx->p++ == ',') {
				skip_cfws(lx);
				continue;
			}
			if (b.len > 0)
				mime_str_addc(&b, ',');
			mime_str_addc(&b, '@');
			read_domain(lx, &b);
		}
		a->route = mime_str_take(&b);
		if (is_at(lx, ':'))
			lx->p++;
	}
	mime_str_init(&b);
	if (read_local(lx, &b))
		a->mailbox = mime_str_take(&b);
	if (is_at(lx, '@')) {
		lx->p++;
		read_domain(lx, &b);
		a->domain = mime_str_take(&b);
	}
	mime_str_deinit(&b);
	/* Whatever is left before '>' is dropped. */
	skip_cfws(lx);
	if (!is_at(lx, '>'))
		lx->has_dropped = true;
	while (lx->p < lx->end && *lx->p != '>' && *lx->p != ',')
		lx->p++;
	if (is_at(lx, '>'))
		lx->p++;
	else
		lx->has_dropped = true;
}

/* Reads a mailbox: name-addr or addr-spec. Returns false, having read
 * nothing, when there is none. */
static bool
read_mailbox(struct alex *lx, struct addr *a)
{
	const unsigned char *start = lx->p;
	struct mime_str b;

	mime_str_init(&b);
	if (read_phrase(lx, &b) || is_at(lx, '<')) {
		skip_cfws(lx);
		if (is_at(lx, '<')) {
			if (b.len > 0)
				a->name = mime_str_take(&b);
			mime_str_deinit(&b);
			read_angle(lx, a);
			return true;
		}
	}
	mime_str_deinit(&b);
	lx->p = start;
	lx->has_comment = false;
	if (!read_local(lx, &b))
		return false;
	if (is_at(lx, '@')) {
		a->mailbox = mime_str_take(&b);
		lx->p++;
		read_domain(lx, &b);
		a->domain = mime_str_take(&b);
	} else if (lx->p < lx->end && *lx->p != ',' && *lx->p != ';') {
		/* Words without an address: a name alone. */
		struct mime_str rest;

		mime_str_init(&rest);
		if (read_phrase(lx, &rest)) {
			mime_str_addc(&b, ' ');
			mime_str_add(&b, rest.s, rest.len);
		}
		mime_str_deinit(&rest);
		a->name = mime_str_take(&b);
		return true;
	} else {
		a->mailbox = mime_str_take(&b);
	}
	if (lx->has_comment && lx->comment.len > 0)
		a->name = xstrndup(lx->comment.s, lx->comment.len);
	return true;
}

static bool
spend(struct mime_ctx *ctx)
{
	if (ctx->addr_budget == 0)
		return false;
	ctx->addr_budget--;
	return true;
}

static void
write_addr(struct mime_str *b, const struct addr *a)
{
	mime_str_addc(b, '(');
	mime_str_add_nstring(b, a->name);
	mime_str_addc(b, ' ');
	mime_str_add_nstring(b, a->route);
	mime_str_addc(b, ' ');
	mime_str_add_nstring(b, a->mailbox != NULL ? a->mailbox :
	    "MISSING_MAILBOX");
	mime_str_addc(b, ' ');
	mime_str_add_nstring(b, a->domain != NULL && *a->domain != '\0' ?
	    a->domain : "MISSING_DOMAIN");
	mime_str_addc(b, ')');
}

static void
addr_clear(struct addr *a)
{
	free(a->name);
	free(a->route);
	free(a->mailbox);
	free(a->domain);
	memset(a, 0, sizeof(*a));
}

/* Skips garbage up to the next separator: ',' or, in a group, ';'. */
static void
skip_garbage(struct alex *lx, bool is_group)
{
	while (lx->p < lx->end && *lx->p != ',' &&
	    !(is_group && *lx->p == ';'))
		lx->p++;
}

/* Reads one mailbox and writes it. */
static void
mailbox_one(struct mime_ctx *ctx, struct alex *lx, bool is_group,
    struct mime_str *b)
{
	struct addr a;
	const unsigned char *start = lx->p;

	memset(&a, 0, sizeof(a));
	if (read_mailbox(lx, &a)) {
		if (spend(ctx))
			write_addr(b, &a);
	}
	addr_clear(&a);
	skip_cfws(lx);
	if (lx->p < lx->end && *lx->p != ',' && !(is_group && *lx->p == ';'))
		skip_garbage(lx, is_group);
	if (lx->p == start && lx->p < lx->end && *lx->p != ';')
		lx->p++;
}

/* Reads a group at its start if there is one (RFC 5322 §3.4: display-name
 * ":" [group-list] ";"), written as RFC 9051 §7.5.2 says: a start entry
 * with the name as mailbox and NIL host, the members, and an all-NIL end
 * entry. Returns false, having read nothing, when there is no group. */
static bool
group_one(struct mime_ctx *ctx, struct alex *lx, struct mime_str *b)
{
	const unsigned char *start = lx->p;
	struct mime_str name;
	struct addr a;

	mime_str_init(&name);
	read_phrase(lx, &name);
	skip_cfws(lx);
	if (!is_at(lx, ':')) {
		mime_str_deinit(&name);
		lx->p = start;
		return false;
	}
	lx->p++;
	if (!spend(ctx)) {
		/* Out of budget: the group is read and dropped. */
		mime_str_deinit(&name);
		while (lx->p < lx->end && *lx->p != ';')
			lx->p++;
		if (is_at(lx, ';'))
			lx->p++;
		return true;
	}
	memset(&a, 0, sizeof(a));
	a.mailbox = mime_str_take(&name);
	mime_str_addc(b, '(');
	mime_str_add_nstring(b, NULL);
	mime_str_adds(b, " NIL ");
	mime_str_add_nstring(b, a.mailbox);
	mime_str_adds(b, " NIL)");
	addr_clear(&a);
	for (;;) {
		skip_cfws(lx);
		if (lx->p == lx->end)
			break;
		if (*lx->p == ';') {
			lx->p++;
			break;
		}
		if (*lx->p == ',') {
			lx->p++;
			continue;
		}
		mailbox_one(ctx, lx, true, b);
	}
	mime_str_adds(b, "(NIL NIL NIL NIL)");
	return true;
}

void
mime_address_write(struct mime_ctx *ctx, const char *v, struct mime_str *b)
{
	struct alex lx;
	size_t start = b->len;

	lx.p = (const unsigned char *)v;
	lx.end = lx.p + strlen(v);
	mime_str_init(&lx.comment);
	lx.has_comment = false;
	lx.has_dropped = false;
	mime_str_addc(b, '(');
	for (;;) {
		skip_cfws(&lx);
		if (lx.p == lx.end || ctx->addr_budget == 0)
			break;
		if (*lx.p == ',') {
			lx.p++;
			continue;
		}
		if (group_one(ctx, &lx, b)) {
			skip_cfws(&lx);
			skip_garbage(&lx, false);
			continue;
		}
		mailbox_one(ctx, &lx, false, b);
	}
	mime_str_deinit(&lx.comment);
	if (b->len == start + 1) {
		b->len = start;
		mime_str_adds(b, "NIL");
		return;
	}
	mime_str_addc(b, ')');
}

/*
 * The strict reading for mime_header_mailboxes(): where the ENVELOPE
 * repairs, this refuses. Anything a reader could take for another address
 * (garbage after a mailbox, a name without an address, an address without
 * a domain) makes the whole field unreadable, so that no other parser can
 * find in the field an address this one did not check.
 */
struct mailboxes {
	char **v;
	size_t n;
};

/* Reads one mailbox at lx and appends its addr-spec to out. Returns false
 * when there is no complete one. */
static bool
strict_mailbox(struct alex *lx, struct mailboxes *out)
{
	struct addr a;
	bool is_ok;

	memset(&a, 0, sizeof(a));
	lx->has_dropped = false;
	/* A domain literal ("[192.0.2.1]") is refused: no account lives
	 * there, and its text may hold anything, an "@" included. */
	is_ok = read_mailbox(lx, &a) && !lx->has_dropped &&
	    a.mailbox != NULL && a.mailbox[0] != '\0' && a.domain != NULL &&
	    a.domain[0] != '\0' && a.domain[0] != '[' &&
	    out->n < MIME_MAX_SENDERS;
	if (is_ok) {
		out->v = xrealloc(out->v, (out->n + 2) * sizeof(*out->v));
		out->v[out->n++] = xasprintf("%s@%s", a.mailbox, a.domain);
		out->v[out->n] = NULL;
	}
	addr_clear(&a);
	return is_ok;
}

/* Reads an address list (RFC 5322 §3.4 address-list, groups included).
 * Returns false at the first thing that is not a mailbox or a group. */
static bool
strict_list(struct alex *lx, struct mailboxes *out)
{
	for (;;) {
		const unsigned char *start;
		struct mime_str name;
		bool is_group;

		skip_cfws(lx);
		if (lx->p == lx->end)
			return true;
		if (*lx->p == ',') {
			lx->p++;
			continue;
		}
		start = lx->p;
		mime_str_init(&name);
		read_phrase(lx, &name);
		mime_str_deinit(&name);
		skip_cfws(lx);
		is_group = is_at(lx, ':');
		if (!is_group) {
			lx->p = start;
			if (!strict_mailbox(lx, out))
				return false;
			skip_cfws(lx);
			if (lx->p != lx->end && *lx->p != ',')
				return false;
			continue;
		}
		lx->p++;
		for (;;) {
			skip_cfws(lx);
			if (lx->p == lx->end)
				return false;
			if (*lx->p == ';') {
				lx->p++;
				break;
			}
			if (*lx->p == ',') {
				lx->p++;
				continue;
			}
			if (!strict_mailbox(lx, out))
				return false;
			skip_cfws(lx);
			if (lx->p == lx->end ||
			    (*lx->p != ',' && *lx->p != ';'))
				return false;
		}
		skip_cfws(lx);
		if (lx->p != lx->end && *lx->p != ',')
			return false;
	}
}

/* Is the line at p (up to end) a field called name? Sets *value_out. */
static bool
is_field(const char *p, const char *end, const char *name,
    const char **value_out)
{
	size_t n = strlen(name);
	const char *q;

	if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0)
		return false;
	/* Obsolete syntax allows white space before the colon (RFC 5322
	 * §4.5). */
	for (q = p + n; q < end && (*q == ' ' || *q == '\t'); q++)
		;
	if (q == end || *q != ':')
		return false;
	*value_out = q + 1;
	return true;
}

int
mime_header_mailboxes(const char *header, size_t len, const char *name,
    char ***addrs_out, size_t *nfields_out)
{
	const char *p = header, *end = header + len;
	struct mailboxes out = { NULL, 0 };
	size_t nfields = 0;
	bool is_ok = true;

	while (p < end && is_ok) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		const char *value;
		struct mime_span sp;
		struct alex lx;
		char *v;

		/* The blank line ends the header section. */
		if (*p == '\r' || *p == '\n')
			break;
		if (!is_field(p, next, name, &value)) {
			p = next;
			continue;
		}
		/* The field runs on over its continuation lines (RFC 5322
		 * §2.2.3). */
		while (next < end && (*next == ' ' || *next == '\t')) {
			eol = memchr(next, '\n', (size_t)(end - next));
			next = eol != NULL ? eol + 1 : end;
		}
		nfields++;
		sp.p = value;
		sp.len = (size_t)(next - value);
		v = mime_field_unfold(&sp);
		lx.p = (const unsigned char *)v;
		lx.end = lx.p + strlen(v);
		mime_str_init(&lx.comment);
		lx.has_comment = false;
		lx.has_dropped = false;
		is_ok = strict_list(&lx, &out);
		mime_str_deinit(&lx.comment);
		free(v);
		p = next;
	}
	if (!is_ok) {
		mime_strings_free(&out.v);
		return -1;
	}
	if (out.v == NULL)
		out.v = xcalloc(1, sizeof(*out.v));
	*addrs_out = out.v;
	*nfields_out = nfields;
	return 0;
}

void
mime_strings_free(char ***strings)
{
	if (*strings == NULL)
		return;
	for (char **s = *strings; *s != NULL; s++)
		free(*s);
	free(*strings);
	*strings = NULL;
}
