/*
 * imap_acl_rights: the pure parts of IMAP access control (RFC 4314), apart
 * from the session so that fuzz/fuzz_imap_acl.c can feed them: rights
 * strings, identifiers, the other users' namespace prefix, and the rights
 * that changing flags takes. imap_acl.c uses them.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* The rights in RFC 4314 §2.1 order, one letter per enum store_acl_right
 * bit. */
static const char rights_letters[] = IMAP_ACL_RIGHTS_LETTERS;

/* RFC 4314 §2.1.1: the obsolete "c" is our "k" and "x" (creating and
 * deleting mailboxes), "d" is "e" and "t" (deleting messages): the
 * first group of servers the section describes. */
#define ACL_OBSOLETE_C (STORE_ACL_CREATE | STORE_ACL_DELETE)
#define ACL_OBSOLETE_D (STORE_ACL_EXPUNGE | STORE_ACL_DELETED)

int
imap_acl_rights_parse(const char *str, size_t len, uint32_t *rights_out)
{
	uint32_t rights = 0;

	if (len > IMAP_ACL_RIGHTS_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *at;

		if (str[i] == 'c')
			rights |= ACL_OBSOLETE_C;
		else if (str[i] == 'd')
			rights |= ACL_OBSOLETE_D;
		else if (str[i] != '\0' &&
		    (at = strchr(rights_letters, str[i])) != NULL)
			rights |= 1u << (at - rights_letters);
		else
			return -1;	/* RFC 4314 §3.1: BAD */
	}
	*rights_out = rights;
	return 0;
}

void
imap_acl_rights_format(uint32_t rights, char out[IMAP_ACL_RIGHTS_LEN])
{
	size_t n = 0;

	for (size_t i = 0; rights_letters[i] != '\0'; i++) {
		if (rights & (1u << i))
			out[n++] = rights_letters[i];
	}
	/* RFC 4314 §2.1.1: "c" and "d" for RFC 2086 clients, only when
	 * every one of their members is held. Reported for any member, a
	 * client copying an ACL back (GETACL, then SETACL with the string)
	 * would widen "k" alone into "k" and "x". */
	if ((rights & ACL_OBSOLETE_C) == ACL_OBSOLETE_C)
		out[n++] = 'c';
	if ((rights & ACL_OBSOLETE_D) == ACL_OBSOLETE_D)
		out[n++] = 'd';
	out[n] = '\0';
}

int
imap_acl_ident_parse(const char *str, size_t len, bool *is_negative_out,
    bool *is_anyone_out, char **address_out)
{
	*is_negative_out = false;
	*is_anyone_out = false;
	*address_out = NULL;
	if (len > 0 && str[0] == '-') {
		/* RFC 4314 §2: negative rights. */
		*is_negative_out = true;
		str++;
		len--;
	}
	if (len == 0 || len > IMAP_ACL_IDENT_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c <= ' ' || c == 0x7f)
			return -1;
	}
	if (len == 6 && strncasecmp(str, "anyone", 6) == 0) {
		*is_anyone_out = true;
		return 0;
	}
	if (memchr(str, '@', len) == NULL)
		return -1;
	*address_out = xstrndup(str, len);
	return 0;
}

/* ---- Names ------------------------------------------------------------- */

#define OTHER_PREFIX IMAP_ACL_OTHER_USERS "/"
#define OTHER_PREFIX_LEN (sizeof(OTHER_PREFIX) - 1)

bool
is_imap_acl_other_name(const char *name)
{
	return strcmp(name, IMAP_ACL_OTHER_USERS) == 0 ||
	    strncmp(name, OTHER_PREFIX, OTHER_PREFIX_LEN) == 0;
}

char *
imap_acl_other_name(const char *owner_address, const char *name)
{
	return xasprintf("%s%s/%s", OTHER_PREFIX, owner_address, name);
}

/* ---- Flags ------------------------------------------------------------- */

/* The rights that changing flags and keywords takes (RFC 4314 §4):
 * "s" for \Seen, "t" for \Deleted, "w" for every other flag and keyword. */
static uint32_t
flags_need(uint32_t flags, const char *keywords)
{
	uint32_t need = 0;

	if (flags & STORE_FLAG_SEEN)
		need |= STORE_ACL_SEEN;
	if (flags & STORE_FLAG_DELETED)
		need |= STORE_ACL_DELETED;
	if ((flags & ~(uint32_t)(STORE_FLAG_SEEN | STORE_FLAG_DELETED)) ||
	    (keywords != NULL && *keywords != '\0'))
		need |= STORE_ACL_WRITE;
	return need;
}

bool
is_imap_acl_flags_allowed(uint32_t rights, uint32_t flags,
    const char *keywords, bool is_replace)
{
	/* Replacing may clear any flag: it takes every one of the three. */
	uint32_t need = is_replace ? STORE_ACL_SEEN | STORE_ACL_DELETED |
	    STORE_ACL_WRITE : flags_need(flags, keywords);

	return (rights & need) == need;
}

void
imap_acl_flags_mask(uint32_t rights, uint32_t *flags, char **keywords)
{
	if (!(rights & STORE_ACL_SEEN))
		*flags &= ~(uint32_t)STORE_FLAG_SEEN;
	if (!(rights & STORE_ACL_DELETED))
		*flags &= ~(uint32_t)STORE_FLAG_DELETED;
	if (!(rights & STORE_ACL_WRITE)) {
		*flags &= STORE_FLAG_SEEN | STORE_FLAG_DELETED;
		free(*keywords);
		*keywords = NULL;
	}
}
