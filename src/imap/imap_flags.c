/*
 * imap_flags: flag lists of STORE and APPEND (RFC 9051 §2.3.2): system
 * flags become store bits, keywords a space-separated string.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* Keywords of one message, all together. */
#define KEYWORDS_MAX 4096

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

/* RFC 9051 §9: a keyword is an atom; atom-specials and "]" are out. */
static bool
is_keyword(const char *k)
{
	if (*k == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	}
	return true;
}

static int
flag_add(const char *name, uint32_t *flags, char *kw, size_t *kwlen)
{
	size_t n;

	if (name[0] == '\\') {
		for (size_t i = 0; i < sizeof(system_flags) /
		    sizeof(system_flags[0]); i++) {
			if (strcasecmp(name, system_flags[i].name) == 0) {
				*flags |= system_flags[i].bit;
				return 0;
			}
		}
		/* \Recent is the server's; other backslash names are not
		 * flags at all. */
		return -1;
	}
	if (!is_keyword(name))
		return -1;
	if (has_store_keyword(kw, name, strlen(name)))
		return 0;
	n = strlen(name);
	if (*kwlen + n + 2 > KEYWORDS_MAX)
		return -1;
	if (*kwlen > 0)
		kw[(*kwlen)++] = ' ';
	memcpy(kw + *kwlen, name, n + 1);
	*kwlen += n;
	return 0;
}

int
imap_flags_parse(const struct imap_arg *a, uint32_t *flags_out,
    char **keywords_out)
{
	char kw[KEYWORDS_MAX];
	size_t kwlen = 0;
	const struct imap_arg *items = a;
	size_t n = 1;

	*flags_out = 0;
	*keywords_out = NULL;
	kw[0] = '\0';
	if (a->kind == IMAP_ARG_LIST) {
		items = a->list;
		n = a->len;
	}
	for (size_t i = 0; i < n; i++) {
		/* flag-keyword = atom (RFC 9051 §9), and NIL is an atom:
		 * a keyword named NIL, as Dovecot takes it (imaptest's nil
		 * script). */
		if ((items[i].kind != IMAP_ARG_ATOM &&
		    items[i].kind != IMAP_ARG_NIL) ||
		    flag_add(items[i].str, flags_out, kw, &kwlen) < 0) {
			*flags_out = 0;
			return -1;
		}
	}
	if (kwlen > 0)
		*keywords_out = xstrdup(kw);
	return 0;
}
