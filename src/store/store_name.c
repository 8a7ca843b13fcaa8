/*
 * store_name: the spelling rules of the store's names, shared by both
 * backends so that they agree: domains and addresses (lowercased), mailbox
 * names (INBOX case-insensitive, '/' between levels) and keyword lists.
 * Pure functions; any thread.
 */
#include "store/store_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* RFC 5321 §4.5.3.1: 64 octets of local part, 255 of domain. */
#define LOCAL_MAX 64
#define DOMAIN_MAX 255
#define LABEL_MAX 63
/* A keyword list is bounded so that one message's row stays small. */
#define KEYWORD_MAX 255
#define KEYWORDS_MAX 256

static char *
lower_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);

	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static bool
is_domain_valid(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > DOMAIN_MAX || !is_store_utf8(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		/* Letters, digits, hyphens; UTF-8 for RFC 6531 domains. */
		if (!isalnum(c) && c != '-' && c < 0x80)
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > LABEL_MAX)
			return false;
	}
	return label > 0;
}

int
store_name_domain(const char *domain, char **norm_out)
{
	size_t n = strlen(domain);

	*norm_out = NULL;
	if (!is_domain_valid(domain, n))
		return -1;
	*norm_out = lower_dup(domain, n);
	return 0;
}

int
store_name_address(const char *address, char **norm_out,
    const char **domain_out)
{
	const char *at = strrchr(address, '@');
	size_t local;

	*norm_out = NULL;
	*domain_out = NULL;
	if (at == NULL)
		return -1;
	local = (size_t)(at - address);
	if (local == 0 || local > LOCAL_MAX ||
	    !is_store_utf8(address, local) ||
	    !is_domain_valid(at + 1, strlen(at + 1)))
		return -1;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)address[i];

		/* Dot-atom text and UTF-8 (RFC 5322 §3.2.3, RFC 6531);
		 * quoted local parts are not taken as account names. */
		if (c <= ' ' || c == 127 || strchr("\"(),:;<>@[\\]", c))
			return -1;
	}
	*norm_out = lower_dup(address, strlen(address));
	*domain_out = *norm_out + local + 1;
	return 0;
}

int
store_name_mailbox(const char *name, char **norm_out)
{
	size_t n = strlen(name);
	char *norm;

	*norm_out = NULL;
	if (n == 0 || n > STORE_MAILBOX_NAME_MAX || !is_store_utf8(name, n))
		return -1;
	if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		/* Control characters and the LIST wildcards (RFC 9051
		 * §6.3.9) would make names that cannot be listed. */
		if (c < ' ' || c == 127 || c == '*' || c == '%')
			return -1;
	}
	norm = xstrdup(name);
	/* RFC 9051 §5.1: INBOX is case-insensitive; its children follow,
	 * so that "inbox/a" and "INBOX/a" are one mailbox. */
	if (strncasecmp(norm, "INBOX", 5) == 0 &&
	    (norm[5] == '\0' || norm[5] == '/'))
		memcpy(norm, "INBOX", 5);
	*norm_out = norm;
	return 0;
}

bool
is_store_name_creatable(const char *norm)
{
	const char *level = norm;

	/* A leading "~" is a home directory to a shell or an exporter. */
	if (norm[0] == '~')
		return false;
	for (;;) {
		size_t n = strcspn(level, "/");

		/* "." and ".." would climb out of the account's folder once
		 * the name becomes a path (Maildir, an export); empty levels
		 * are refused by store_name_mailbox() already. */
		if ((n == 1 && level[0] == '.') ||
		    (n == 2 && level[0] == '.' && level[1] == '.'))
			return false;
		if (level[n] == '\0')
			break;
		level += n + 1;
	}
	for (const unsigned char *p = (const unsigned char *)norm; *p != '\0';
	    p++) {
		/* C1 controls, U+0080..U+009F, are 0xC2 0x80..0x9F in
		 * UTF-8 (the C0 ones are refused with the name). */
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

bool
is_store_name_inbox(const char *norm)
{
	return strcmp(norm, "INBOX") == 0;
}

char *
store_name_parent(const char *norm)
{
	const char *slash = strrchr(norm, '/');

	return slash != NULL ? xstrndup(norm, (size_t)(slash - norm)) : NULL;
}

/* ---- Keywords -------------------------------------------------------- */

/* RFC 9051 §9: flag-keyword = atom; ATOM-CHAR excludes atom-specials. */
static bool
is_keyword_valid(const char *s, size_t n)
{
	if (n == 0 || n > KEYWORD_MAX || s[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 127 || strchr("(){%*\"\\]", c))
			return false;
	}
	return true;
}

/* The next space-separated word of a list at or after *pos, with its
 * length in *n; NULL at the end. */
static const char *
word_next(const char **pos, size_t *n)
{
	const char *p = *pos, *start;

	if (p == NULL)
		return NULL;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	start = p;
	while (*p != '\0' && *p != ' ')
		p++;
	*n = (size_t)(p - start);
	*pos = p;
	return start;
}

bool
has_store_keyword(const char *list, const char *keyword, size_t len)
{
	const char *pos = list, *w;
	size_t n;

	while ((w = word_next(&pos, &n)) != NULL) {
		if (n == len && strncasecmp(w, keyword, n) == 0)
			return true;
	}
	return false;
}

/* Appends the word to a list being built. */
static void
list_add(char **list, size_t *len, const char *w, size_t n)
{
	*list = xrealloc(*list, *len + n + 2);
	if (*len > 0)
		(*list)[(*len)++] = ' ';
	memcpy(*list + *len, w, n);
	*len += n;
	(*list)[*len] = '\0';
}

int
store_keywords_norm(const char *keywords, char **norm_out)
{
	const char *pos = keywords, *w;
	char *list = NULL;
	size_t len = 0, count = 0, n;

	*norm_out = NULL;
	while ((w = word_next(&pos, &n)) != NULL) {
		if (!is_keyword_valid(w, n) || ++count > KEYWORDS_MAX) {
			free(list);
			return -1;
		}
		if (list == NULL || !has_store_keyword(list, w, n))
			list_add(&list, &len, w, n);
	}
	*norm_out = list;
	return 0;
}

char *
store_keywords_apply(const char *old, const char *change,
    enum store_flag_mode mode)
{
	const char *pos = old, *w;
	char *list = NULL;
	size_t len = 0, n;

	switch (mode) {
	case STORE_FLAGS_REPLACE:
		return change != NULL && *change != '\0' ? xstrdup(change) :
		    NULL;
	case STORE_FLAGS_ADD:
		while ((w = word_next(&pos, &n)) != NULL)
			list_add(&list, &len, w, n);
		pos = change;
		while ((w = word_next(&pos, &n)) != NULL) {
			if (list == NULL || !has_store_keyword(list, w, n))
				list_add(&list, &len, w, n);
		}
		return list;
	case STORE_FLAGS_REMOVE:
		while ((w = word_next(&pos, &n)) != NULL) {
			if (change == NULL || !has_store_keyword(change, w, n))
				list_add(&list, &len, w, n);
		}
		return list;
	}
	panic("store_keywords_apply: mode %d", (int)mode);
}

bool
is_store_keywords_equal(const char *a, const char *b)
{
	const char *pos = a, *w;
	size_t na = 0, nb = 0, n;

	while ((w = word_next(&pos, &n)) != NULL) {
		if (b == NULL || !has_store_keyword(b, w, n))
			return false;
		na++;
	}
	pos = b;
	while (word_next(&pos, &n) != NULL)
		nb++;
	return na == nb;
}
