/*
 * libFuzzer harness for what IMAP ACL (RFC 4314) reads from clients: the
 * input up to its first NUL is a rights string (SETACL, with its "+"/"-"
 * mode stripped as the command does), the rest up to the next NUL an
 * identifier (SETACL, DELETEACL, LISTRIGHTS), and the whole first part is
 * also tried as a mailbox name in the other users' namespace and as
 * flags for the rights checks of STORE and APPEND.
 *
 * Checked: a rights string is accepted exactly when it is at most
 * IMAP_ACL_RIGHTS_MAX letters of "lrswipkxteacd"; its bits are within
 * STORE_ACL_ALL; formatting gives letters in RFC order (then "c", "d")
 * whose letters other than "c" and "d" parse back to the same bits; an accepted identifier is "anyone"
 * or holds an '@', has no space or control character, and its address is
 * exactly the input without the "-"; flags masked by some rights are
 * allowed by them, and every right allows every change.
 *
 * fuzz-sources: src/imap/imap_acl_rights.c
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_rights_text(const char *s, size_t len)
{
	if (len > IMAP_ACL_RIGHTS_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || strchr("lrswipkxteacd", s[i]) == NULL)
			return false;
	}
	return true;
}

static void
check_rights(const char *s, size_t len)
{
	char out[IMAP_ACL_RIGHTS_LEN];
	uint32_t bits = 0xffffffffu, again = 0;
	int rc;

	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		s++;
		len--;
	}
	rc = imap_acl_rights_parse(s, len, &bits);
	if ((rc == 0) != is_rights_text(s, len))
		abort();
	if (rc != 0)
		return;
	if (bits & ~STORE_ACL_ALL)
		abort();
	imap_acl_rights_format(bits, out);
	if (strlen(out) >= IMAP_ACL_RIGHTS_LEN)
		abort();
	/* The text is exactly the bits, with or without the obsolete
	 * letters: "c" and "d" are written only beside their whole group
	 * (RFC 4314 §2.1.1), so copying an ACL back never widens it. */
	if (imap_acl_rights_parse(out, strcspn(out, "cd"), &again) != 0 ||
	    again != bits)
		abort();
	if (imap_acl_rights_parse(out, strlen(out), &again) != 0 ||
	    again != bits)
		abort();
	/* RFC 4314 §2.1 order, then the obsolete letters. */
	for (size_t i = 1; out[0] != '\0' && out[i] != '\0'; i++) {
		const char *order = "lrswipkxteacd";

		if (strchr(order, out[i - 1]) >= strchr(order, out[i]))
			abort();
	}
}

static void
check_ident(const char *s, size_t len)
{
	bool is_negative, is_anyone;
	char *address;
	const char *p = s;
	size_t plen = len;

	if (imap_acl_ident_parse(s, len, &is_negative, &is_anyone,
	    &address) != 0) {
		if (address != NULL)
			abort();
		return;
	}
	if (is_negative != (len > 0 && s[0] == '-'))
		abort();
	if (is_negative) {
		p++;
		plen--;
	}
	if (plen == 0 || plen > IMAP_ACL_IDENT_MAX)
		abort();
	for (size_t i = 0; i < plen; i++) {
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
			abort();
	}
	if (is_anyone) {
		if (address != NULL || plen != 6 ||
		    strncasecmp(p, "anyone", 6) != 0)
			abort();
		return;
	}
	if (address == NULL || strlen(address) != plen ||
	    memcmp(address, p, plen) != 0 || strchr(address, '@') == NULL)
		abort();
	free(address);
}

static void
check_flags(const uint8_t *data, size_t size, const char *text)
{
	uint32_t rights = size > 1 ? (data[0] | (uint32_t)data[1] << 8) &
	    STORE_ACL_ALL : 0;
	uint32_t flags = size > 2 ? data[2] & 0x1f : 0;
	char *keywords = text[0] != '\0' ? strdup(text) : NULL;

	if (!is_imap_acl_flags_allowed(STORE_ACL_ALL, flags, keywords,
	    size > 3 && (data[3] & 1)))
		abort();
	imap_acl_flags_mask(rights, &flags, &keywords);
	if (!is_imap_acl_flags_allowed(rights, flags, keywords, false))
		abort();
	free(keywords);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	const char *first, *second;
	size_t n1, n2;

	memcpy(in, data, size);
	in[size] = '\0';
	first = in;
	n1 = strlen(first);
	second = n1 < size ? in + n1 + 1 : in + size;
	n2 = strlen(second);
	check_rights(first, n1);
	check_ident(second, n2);
	/* Lengths as the caller gives them: bytes after a NUL included. */
	check_rights(in, size);
	check_ident(in, size);
	if (is_imap_acl_other_name(first) !=
	    (strcmp(first, IMAP_ACL_OTHER_USERS) == 0 ||
	    strncmp(first, IMAP_ACL_OTHER_USERS "/",
	    sizeof(IMAP_ACL_OTHER_USERS)) == 0))
		abort();
	check_flags(data, size, second);
	free(in);
	return 0;
}
