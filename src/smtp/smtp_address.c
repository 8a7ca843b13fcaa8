/*
 * smtp_address: the reverse-path and forward-path of MAIL and RCPT with
 * their parameters (RFC 5321 §4.1.2, §4.1.1.11; RFC 6531 §3.3 for UTF-8
 * addresses). Bounded by RFC 5321 §4.5.3.1: local part 64, domain 255,
 * path 256 octets.
 */
#include "smtp/smtp_int.h"

#include <ctype.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 255
#define PATH_MAX_LEN 256

static bool
has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	}
	return false;
}

int
smtp_helo_check(const char *args, size_t len, char *err, size_t errlen)
{
	/* The argument is copied into the Received: field (RFC 5321
	 * §4.4): a bare CR or LF there would end the field, or a line,
	 * for whoever reads the message next. */
	if (has_control(args, len)) {
		snprintf(err, errlen, "501 5.5.2 Control characters are not "
		    "allowed in the host name");
		return -1;
	}
	return 0;
}

static bool
is_atext(unsigned char c)
{
	/* RFC 5322 §3.2.3 atext; UTF-8 bytes per RFC 6531 §3.3. */
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	    c >= 0x80;
}

static bool
is_local_part_ok(const char *s, size_t n, bool *is_utf8)
{
	if (n == 0 || n > LOCAL_MAX)
		return false;
	if (s[0] == '"') {
		/* Quoted-string: qtextSMTP or quoted-pairSMTP. */
		if (n < 2 || s[n - 1] != '"')
			return false;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				if (++i >= n - 1 || s[i] < 32 || s[i] > 126)
					return false;
			} else if (c == '"' || (c < 32 && c != ' ') || c == 127) {
				return false;
			}
			if (c >= 0x80)
				*is_utf8 = true;
		}
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (i == 0 || i == n - 1 || s[i + 1] == '.')
				return false;
		} else if (!is_atext(c)) {
			return false;
		}
		if (c >= 0x80)
			*is_utf8 = true;
	}
	return true;
}

/* RFC 5321 §4.1.3: "[" IPv4 "]", "[IPv6:" IPv6 "]" or a General-address-
 * literal, tag ":" 1*dcontent, dcontent being printable ASCII but "[", "\\"
 * and "]". Never routed by us, but copied into Received: and the queue,
 * so a control character (a bare CR) must not get through. */
static bool
is_address_literal_ok(const char *s, size_t n)
{
	char ip[64];
	unsigned char bin[16];
	const char *colon;
	size_t len;

	if (n < 3 || s[n - 1] != ']')
		return false;
	s++;
	len = n - 2;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	colon = memchr(s, ':', len);
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		if (len - 5 >= sizeof(ip))
			return false;
		memcpy(ip, s + 5, len - 5);
		ip[len - 5] = '\0';
		return inet_pton(AF_INET6, ip, bin) == 1;
	}
	if (colon != NULL) {
		/* Standardized-tag ":" 1*dcontent. */
		if (colon == s || (size_t)(colon - s) + 1 == len)
			return false;
		for (const char *t = s; t < colon; t++) {
			if (!isalnum((unsigned char)*t) && *t != '-')
				return false;
		}
		return true;
	}
	if (len >= sizeof(ip))
		return false;
	memcpy(ip, s, len);
	ip[len] = '\0';
	return inet_pton(AF_INET, ip, bin) == 1;
}

static bool
is_domain_ok(const char *s, size_t n, bool *is_utf8)
{
	if (n == 0 || n > DOMAIN_MAX)
		return false;
	if (s[0] == '[')
		return is_address_literal_ok(s, n);
	if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80)
			*is_utf8 = true;
		else if (!isalnum(c) && c != '-' && c != '.')
			return false;
		if (c == '.' && i + 1 < n && s[i + 1] == '.')
			return false;
	}
	return true;
}

static int
params_parse(const char *p, const char *end, struct smtp_path *path,
    char *err, size_t errlen)
{
	while (p < end) {
		const char *tok, *eq;
		struct smtp_param *pa;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		tok = p;
		while (p < end && *p != ' ')
			p++;
		if (path->nparams == SMTP_MAX_PARAMS) {
			snprintf(err, errlen, "501 5.5.4 Too many parameters");
			return -1;
		}
		eq = memchr(tok, '=', (size_t)(p - tok));
		if (eq == tok) {
			snprintf(err, errlen, "501 5.5.4 Malformed parameter");
			return -1;
		}
		pa = &path->params[path->nparams++];
		pa->key = xstrndup(tok, (size_t)((eq ? eq : p) - tok));
		for (char *k = pa->key; *k; k++) {
			if (!isalnum((unsigned char)*k) && *k != '-') {
				snprintf(err, errlen, "501 5.5.4 Malformed "
				    "parameter");
				return -1;
			}
			*k = (char)toupper((unsigned char)*k);
		}
		pa->value = eq ? xstrndup(eq + 1, (size_t)(p - eq - 1)) : NULL;
	}
	return 0;
}

int
smtp_path_parse(const char *line, size_t len, const char *prefix,
    struct smtp_path *path, char *err, size_t errlen)
{
	size_t plen = strlen(prefix);
	const char *p = line, *end = line + len, *close, *at, *addr;
	size_t alen;
	bool is_utf8 = false;

	memset(path, 0, sizeof(*path));
	/* A control character, a bare CR above all, has no place in a path
	 * or a parameter (RFC 5321 §4.1.2), and both are copied into header
	 * fields and into commands sent to other servers. */
	if (has_control(line, len)) {
		snprintf(err, errlen, "501 5.5.2 Control characters are not "
		    "allowed in addresses or parameters");
		return -1;
	}
	if (len < plen || strncasecmp(line, prefix, plen) != 0) {
		snprintf(err, errlen, "501 5.5.4 Syntax: %s<address>", prefix);
		return -1;
	}
	p += plen;
	/* Tolerated though not in the grammar: "FROM: <a@b>". */
	while (p < end && *p == ' ')
		p++;
	if (p == end || *p != '<') {
		snprintf(err, errlen, "501 5.1.7 Address must be in angle "
		    "brackets: %s<address>", prefix);
		return -1;
	}
	p++;
	close = NULL;
	{
		bool in_quote = false;

		for (const char *q = p; q < end; q++) {
			if (*q == '\\' && in_quote) {
				q++;
				continue;
			}
			if (*q == '"')
				in_quote = !in_quote;
			else if (*q == '>' && !in_quote) {
				close = q;
				break;
			}
		}
	}
	if (close == NULL) {
		snprintf(err, errlen, "501 5.1.7 Missing '>' after the address");
		return -1;
	}
	addr = p;
	alen = (size_t)(close - p);
	/* RFC 5321 §4.1.2: a source route "@a,@b:" is accepted and
	 * ignored. */
	if (alen > 0 && addr[0] == '@') {
		const char *colon = memchr(addr, ':', alen);

		if (colon == NULL) {
			snprintf(err, errlen, "501 5.1.7 Bad address syntax");
			return -1;
		}
		alen -= (size_t)(colon + 1 - addr);
		addr = colon + 1;
	}
	if (alen > PATH_MAX_LEN) {
		snprintf(err, errlen, "501 5.1.7 Address too long");
		return -1;
	}
	if (alen > 0) {
		at = NULL;
		for (const char *q = addr + alen; q > addr; q--) {
			if (q[-1] == '@') {
				at = q - 1;
				break;
			}
		}
		/* RFC 5321 §4.1.1.3: "RCPT TO:<Postmaster>" without a
		 * domain must be accepted. */
		if (at == NULL && strcmp(prefix, "TO:") == 0 &&
		    alen == strlen(SMTP_POSTMASTER) &&
		    strncasecmp(addr, SMTP_POSTMASTER, alen) == 0) {
			path->address = xstrdup(SMTP_POSTMASTER);
			goto params;
		}
		if (at == NULL || !is_local_part_ok(addr, (size_t)(at - addr),
		    &is_utf8) || !is_domain_ok(at + 1,
		    alen - (size_t)(at + 1 - addr), &is_utf8)) {
			snprintf(err, errlen, "501 5.1.3 Bad address syntax");
			return -1;
		}
	}
	path->address = xstrndup(addr, alen);
	path->is_utf8 = is_utf8;
params:
	if (close + 1 < end && close[1] != ' ') {
		snprintf(err, errlen, "501 5.5.4 Expected a space after the "
		    "address");
		smtp_path_deinit(path);
		return -1;
	}
	if (params_parse(close + 1, end, path, err, errlen) < 0) {
		smtp_path_deinit(path);
		return -1;
	}
	return 0;
}

void
smtp_path_deinit(struct smtp_path *p)
{
	free(p->address);
	for (size_t i = 0; i < p->nparams; i++) {
		free(p->params[i].key);
		free(p->params[i].value);
	}
	memset(p, 0, sizeof(*p));
}

const char *
smtp_path_param(const struct smtp_path *p, const char *key, bool *has_out)
{
	for (size_t i = 0; i < p->nparams; i++) {
		if (strcmp(p->params[i].key, key) == 0) {
			if (has_out != NULL)
				*has_out = true;
			return p->params[i].value;
		}
	}
	if (has_out != NULL)
		*has_out = false;
	return NULL;
}

const char *
smtp_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : "";
}

/* RFC 3461 §4: xtext = *( xchar / hexchar ); xchar is "!" to "~" but "+"
 * and "="; hexchar is "+" and two hex digits (uppercase in the grammar;
 * lowercase is taken). */
static bool
is_xtext(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '+') {
			if (!isxdigit((unsigned char)s[1]) ||
			    !isxdigit((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (*s < '!' || *s > '~' || *s == '=') {
			return false;
		}
	}
	return true;
}

bool
is_smtp_dsn_param_ok(const char *key, const char *value)
{
	if (strcmp(key, "RET") == 0)
		return strcasecmp(value, "FULL") == 0 ||
		    strcasecmp(value, "HDRS") == 0;
	if (strcmp(key, "ENVID") == 0)	/* §4.4: at most 100 characters */
		return strlen(value) <= 100 && is_xtext(value);
	if (strcmp(key, "ORCPT") == 0) {
		/* §4.2: addr-type ";" xtext; addr-type is an atom of
		 * letters, digits and "-" (RFC 3464 §2.1.2). */
		size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");

		return n > 0 && value[n] == ';' && is_xtext(value + n + 1);
	}
	if (strcmp(key, "NOTIFY") == 0) {
		/* §4.1: "NEVER", or SUCCESS, FAILURE and DELAY separated by
		 * commas, each at most once. */
		static const char *const words[] = { "SUCCESS", "FAILURE",
		    "DELAY" };
		bool seen[3] = { false, false, false };

		if (strcasecmp(value, "NEVER") == 0)
			return true;
		for (const char *p = value;; p++) {
			size_t n = strcspn(p, ","), i;

			for (i = 0; i < 3; i++) {
				if (n == strlen(words[i]) &&
				    strncasecmp(p, words[i], n) == 0)
					break;
			}
			if (i == 3 || seen[i])
				return false;
			seen[i] = true;
			p += n;
			if (*p == '\0')
				return true;
		}
	}
	return true;
}
