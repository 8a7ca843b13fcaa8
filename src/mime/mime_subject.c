#include "mime/mime_int.h"

#include <ctype.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/*
 * What SORT and THREAD (RFC 5256) compare: the base subject (§2.1), the
 * i;unicode-casemap collation key of a string (RFC 5051, which RFC 5256
 * §7 requires through I18NLEVEL=1), and the first address of an ENVELOPE
 * field (§3 FROM, TO, CC; RFC 5957 DISPLAYFROM, DISPLAYTO). Pure
 * functions of their arguments; any thread.
 */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns its length at s, or 0. */
static size_t
blob_len(const char *s)
{
	size_t i = 1;

	if (s[0] != '[')
		return 0;
	while (s[i] != '\0' && s[i] != '[' && s[i] != ']')
		i++;
	if (s[i] != ']')
		return 0;
	i++;
	while (is_wsp(s[i]))
		i++;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; its length at
 * s, or 0. */
static size_t
refwd_len(const char *s)
{
	size_t i;

	if (strncasecmp(s, "re", 2) == 0)
		i = 2;
	else if (strncasecmp(s, "fwd", 3) == 0)
		i = 3;
	else if (strncasecmp(s, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (is_wsp(s[i]))
		i++;
	i += blob_len(s + i);
	return s[i] == ':' ? i + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP; its length at s, or 0.
 * *is_refwd_out says which of the two matched. */
static size_t
leader_len(const char *s, bool *is_refwd_out)
{
	size_t i = 0, n, r;

	*is_refwd_out = false;
	if (is_wsp(s[0]))
		return 1;
	while ((n = blob_len(s + i)) > 0)
		i += n;
	if ((r = refwd_len(s + i)) == 0)
		return 0;
	*is_refwd_out = true;
	return i + r;
}

static bool
has_nonwsp(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!is_wsp(*s))
			return true;
	}
	return false;
}

char *
mime_subject_base(const char *subject, bool *is_reply_out)
{
	char *b, *s;
	size_t len = 0;
	bool is_reply = false;

	/* (1) The subject is decoded already (RFC 2047 words to UTF-8);
	 * tabs and line breaks become spaces, runs of spaces one. */
	b = xstrdup(subject != NULL ? subject : "");
	for (size_t i = 0; b[i] != '\0'; i++) {
		char c = b[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && len > 0 && b[len - 1] == ' ')
			continue;
		b[len++] = c;
	}
	b[len] = '\0';
	s = b;
	for (;;) {
		bool is_changed;

		/* (2) subj-trailer = "(fwd)" / WSP, from the end. */
		for (;;) {
			len = strlen(s);
			if (len > 0 && is_wsp(s[len - 1])) {
				s[len - 1] = '\0';
			} else if (len >= 5 &&
			    strcasecmp(s + len - 5, "(fwd)") == 0) {
				s[len - 5] = '\0';
				is_reply = true;
			} else {
				break;
			}
		}
		/* (3), (4), (5): leaders, then a blob that does not leave
		 * the subject empty, until neither is left. */
		do {
			size_t n;
			bool is_refwd;

			is_changed = false;
			if ((n = leader_len(s, &is_refwd)) > 0) {
				s += n;
				is_reply = is_reply || is_refwd;
				is_changed = true;
			} else if ((n = blob_len(s)) > 0 &&
			    has_nonwsp(s + n)) {
				s += n;
				is_changed = true;
			}
		} while (is_changed);
		/* (6) "[fwd:" ... "]" around it all: unwrap and again. */
		len = strlen(s);
		if (len >= 6 && strncasecmp(s, "[fwd:", 5) == 0 &&
		    s[len - 1] == ']') {
			s[len - 1] = '\0';
			s += 5;
			is_reply = true;
			continue;
		}
		break;
	}
	memmove(b, s, strlen(s) + 1);
	if (is_reply_out != NULL)
		*is_reply_out = is_reply;
	return b;
}

char *
mime_collate_key(const char *s)
{
	size_t len;
	bool is_ascii = true;
	GString *t;
	char *nfkd, *out;

	if (s == NULL)
		return xstrdup("");
	len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80) {
			is_ascii = false;
			break;
		}
	}
	/* RFC 5051 §2: the titlecase of each character, then its NFKD
	 * decomposition. For US-ASCII that is the upper case. Bytes that
	 * are not UTF-8 fall back to i;ascii-casemap (RFC 4790 §9.2). */
	if (is_ascii || !g_utf8_validate(s, (gssize)len, NULL)) {
		out = xstrdup(s);
		for (size_t i = 0; i < len; i++)
			out[i] = (char)toupper((unsigned char)out[i]);
		return out;
	}
	t = g_string_sized_new(len + 8);
	for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p))
		g_string_append_unichar(t, g_unichar_totitle(
		    g_utf8_get_char(p)));
	nfkd = g_utf8_normalize(t->str, (gssize)t->len, G_NORMALIZE_NFKD);
	g_string_free(t, TRUE);
	if (nfkd == NULL)
		return xstrdup(s);
	out = xstrdup(nfkd);
	g_free(nfkd);
	return out;
}

/* ---- ENVELOPE addresses --------------------------------------------- */

/* A reader of the ENVELOPE text mime_imap_envelope() wrote. */
struct envr {
	const char *p, *end;
};

static void
envr_sp(struct envr *r)
{
	while (r->p < r->end && *r->p == ' ')
		r->p++;
}

/* Reads an nstring: NIL (*out NULL), a quoted string or a literal.
 * Returns false on anything else. */
static bool
envr_nstring(struct envr *r, char **out)
{
	envr_sp(r);
	*out = NULL;
	if (r->end - r->p >= 3 && strncmp(r->p, "NIL", 3) == 0) {
		r->p += 3;
		return true;
	}
	if (r->p < r->end && *r->p == '"') {
		struct mime_str b;

		mime_str_init(&b);
		for (r->p++; r->p < r->end && *r->p != '"'; r->p++) {
			if (*r->p == '\\' && r->p + 1 < r->end)
				r->p++;
			mime_str_addc(&b, *r->p);
		}
		if (r->p >= r->end) {
			mime_str_deinit(&b);
			return false;
		}
		r->p++;
		*out = mime_str_take(&b);
		return true;
	}
	if (r->p < r->end && *r->p == '{') {
		char *e;
		unsigned long n = strtoul(r->p + 1, &e, 10);

		if (e >= r->end || *e != '}' || r->end - e < 3 ||
		    e[1] != '\r' || e[2] != '\n' ||
		    n > (unsigned long)(r->end - e - 3))
			return false;
		*out = xstrndup(e + 3, n);
		r->p = e + 3 + n;
		return true;
	}
	return false;
}

/* Skips one nstring or parenthesized list (with the strings in it). */
static bool
envr_skip(struct envr *r)
{
	char *s;

	envr_sp(r);
	if (r->p < r->end && *r->p == '(') {
		r->p++;
		for (;;) {
			envr_sp(r);
			if (r->p >= r->end)
				return false;
			if (*r->p == ')') {
				r->p++;
				return true;
			}
			if (!envr_skip(r))
				return false;
		}
	}
	if (!envr_nstring(r, &s))
		return false;
	free(s);
	return true;
}

int
mime_envelope_address(const char *envelope, enum mime_envelope_field field,
    struct mime_envelope_addr *out)
{
	struct envr r;

	memset(out, 0, sizeof(*out));
	if (envelope == NULL)
		return -1;
	r.p = envelope;
	r.end = envelope + strlen(envelope);
	if (r.p >= r.end || *r.p != '(')
		return -1;
	r.p++;
	for (int i = 0; i < (int)field; i++) {
		if (!envr_skip(&r))
			return -1;
	}
	envr_sp(&r);
	if (r.end - r.p >= 3 && strncmp(r.p, "NIL", 3) == 0)
		return 0;
	if (r.p >= r.end || *r.p != '(')
		return -1;
	r.p++;
	/* The first address as ENVELOPE lists it, a group's start marker
	 * included: RFC 5256 §3 sorts by "the addr-mailbox of the first
	 * address", and RFC 9051 §7.5.2 puts the group name there (host
	 * NIL). A group end marker (mailbox NIL) cannot come first; it
	 * is skipped all the same. (imaptest's sort-addresses and
	 * sort-display-to check this, as Dovecot sorts.) */
	for (;;) {
		char *f[4];

		envr_sp(&r);
		if (r.p >= r.end || *r.p != '(')
			return r.p < r.end && *r.p == ')' ? 0 : -1;
		r.p++;
		for (int i = 0; i < 4; i++) {
			if (!envr_nstring(&r, &f[i])) {
				for (int j = 0; j < i; j++)
					free(f[j]);
				return -1;
			}
		}
		envr_sp(&r);
		if (r.p >= r.end || *r.p != ')') {
			for (int j = 0; j < 4; j++)
				free(f[j]);
			return -1;
		}
		r.p++;
		free(f[1]);
		if (f[2] != NULL) {
			out->name = f[0];
			out->mailbox = f[2];
			out->host = f[3];
			return 0;
		}
		free(f[0]);
		free(f[2]);
	}
}

void
mime_envelope_addr_deinit(struct mime_envelope_addr *a)
{
	free(a->name);
	free(a->mailbox);
	free(a->host);
	memset(a, 0, sizeof(*a));
}

char *
mime_envelope_display(const struct mime_envelope_addr *a)
{
	/* RFC 5957 §2: the decoded display-name; without one, the
	 * addr-spec. */
	if (a->name != NULL) {
		char *d = mime_text_decode(a->name);

		if (d != NULL && has_nonwsp(d))
			return d;
		free(d);
	}
	if (a->mailbox == NULL)
		return xstrdup("");
	if (a->host == NULL || a->host[0] == '\0')
		return xstrdup(a->mailbox);
	size_t n = strlen(a->mailbox) + strlen(a->host) + 2;
	char *s = xmalloc(n);

	snprintf(s, n, "%s@%s", a->mailbox, a->host);
	return s;
}
