/*
 * archive_maildir: Maildir++ as Dovecot writes it. Message file names
 * carry the flags after ":2," (the Maildir spec's info, letters in ASCII
 * order) and the folder's keywords as letters a..z, whose names are the
 * lines "N keyword" of the folder's dovecot-keywords file. Folders are
 * directories ".A.B" beside cur/new/tmp of INBOX; their names are
 * modified UTF-7 on disk (Dovecot's default) with the listescape plugin's
 * \NN escapes for the characters a level may not hold as it is.
 */
#include "archive/archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mutf7.h"
#include "lib/util.h"
#include "store/store.h"

/* Longest keyword accepted from dovecot-keywords (store_name.c's). */
#define KEYWORD_MAX 255

void
archive_maildir_name_parse(const char *name,
    struct archive_maildir_info *info_out)
{
	const char *info = strstr(name, ":2,");
	int64_t t = 0;
	size_t i = 0;

	memset(info_out, 0, sizeof(*info_out));
	while (name[i] >= '0' && name[i] <= '9' && i < 18)
		t = t * 10 + (name[i++] - '0');
	info_out->time = i > 0 && (name[i] == '.' || name[i] == '\0') ? t : -1;
	if (info == NULL)
		return;
	for (const char *p = info + 3; *p != '\0'; p++) {
		switch (*p) {
		case 'D':
			info_out->flags |= STORE_FLAG_DRAFT;
			break;
		case 'F':
			info_out->flags |= STORE_FLAG_FLAGGED;
			break;
		case 'P':
			info_out->is_forwarded = true;
			break;
		case 'R':
			info_out->flags |= STORE_FLAG_ANSWERED;
			break;
		case 'S':
			info_out->flags |= STORE_FLAG_SEEN;
			break;
		case 'T':
			info_out->flags |= STORE_FLAG_DELETED;
			break;
		default:
			if (*p >= 'a' && *p <= 'z')
				info_out->keywords |= 1u << (*p - 'a');
			break;
		}
	}
}

size_t
archive_maildir_name_format(char *out, size_t cap, int64_t time,
    const char *unique, const char *host, uint64_t size, uint64_t vsize,
    const struct archive_maildir_info *info)
{
	char flags[8 + ARCHIVE_MAILDIR_KEYWORDS + 1];
	size_t n = 0;
	int len;

	/* ASCII order, as the Maildir spec asks: D F P R S T a..z. */
	if (info->flags & STORE_FLAG_DRAFT)
		flags[n++] = 'D';
	if (info->flags & STORE_FLAG_FLAGGED)
		flags[n++] = 'F';
	if (info->is_forwarded)
		flags[n++] = 'P';
	if (info->flags & STORE_FLAG_ANSWERED)
		flags[n++] = 'R';
	if (info->flags & STORE_FLAG_SEEN)
		flags[n++] = 'S';
	if (info->flags & STORE_FLAG_DELETED)
		flags[n++] = 'T';
	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS; i++) {
		if (info->keywords & (1u << i))
			flags[n++] = (char)('a' + i);
	}
	flags[n] = '\0';
	len = snprintf(out, cap, "%lld.%s.%s,S=%llu,W=%llu:2,%s",
	    (long long)(time > 0 ? time : 0), unique, host,
	    (unsigned long long)size, (unsigned long long)vsize, flags);
	return len < 0 || (size_t)len >= cap ? 0 : (size_t)len;
}

static bool
is_keyword_atom(const char *s, size_t n)
{
	if (n == 0 || n > KEYWORD_MAX || s[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 127 || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

size_t
archive_maildir_keywords_parse(struct archive_maildir_keywords *k,
    const char *text, size_t n, size_t *bad_line_out)
{
	size_t bad = 0, line = 0, i = 0;

	memset(k, 0, sizeof(*k));
	*bad_line_out = 0;
	while (i < n) {
		const char *p = text + i, *lf = memchr(p, '\n', n - i);
		size_t len = lf != NULL ? (size_t)(lf - p) : n - i;
		size_t j = 0;
		int num = 0;

		i += len + (lf != NULL);
		line++;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		while (j < len && j < 3 && p[j] >= '0' && p[j] <= '9')
			num = num * 10 + (p[j++] - '0');
		if (j == 0 || j >= len || p[j] != ' ' ||
		    num >= ARCHIVE_MAILDIR_KEYWORDS ||
		    !is_keyword_atom(p + j + 1, len - j - 1) ||
		    k->names[num] != NULL) {
			if (bad++ == 0)
				*bad_line_out = line;
			continue;
		}
		k->names[num] = xstrndup(p + j + 1, len - j - 1);
	}
	return bad;
}

int
archive_maildir_keywords_letter(struct archive_maildir_keywords *k,
    const char *keyword, size_t len)
{
	int free_slot = -1;

	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS; i++) {
		if (k->names[i] == NULL) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strlen(k->names[i]) == len &&
		    strncasecmp(k->names[i], keyword, len) == 0) {
			return i;
		}
	}
	if (free_slot >= 0)
		k->names[free_slot] = xstrndup(keyword, len);
	return free_slot;
}

void
archive_maildir_keywords_deinit(struct archive_maildir_keywords *k)
{
	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS; i++) {
		free(k->names[i]);
		k->names[i] = NULL;
	}
}

/* ---- Folder names ----------------------------------------------------- */

static void
append(char *out, size_t *len, const char *s, size_t n)
{
	memcpy(out + *len, s, n);
	*len += n;
}

char *
archive_folder_encode(const char *name)
{
	char *out = NULL;
	size_t len = 0;
	const char *p = name;

	if (strcmp(name, "INBOX") == 0)
		return xstrdup("");
	if (*name == '\0')
		return NULL;
	/* No length limit here: a name too long for the file system fails
	 * where the directory is made, with ENAMETOOLONG. */
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		char *level, *enc;

		if (n == 0) {
			free(out);
			return NULL;	/* "a//b", "/a", "a/" */
		}
		level = xstrndup(p, n);
		enc = mutf7_encode(level);
		free(level);
		if (enc == NULL) {
			free(out);
			return NULL;
		}
		/* Each byte becomes at most 3 ("\2e"), plus the dot. */
		out = xrealloc(out, len + 3 * strlen(enc) + 2);
		out[len++] = '.';
		for (size_t i = 0; enc[i] != '\0'; i++) {
			unsigned char c = (unsigned char)enc[i];

			if (c == '.' || c == '/' || c == '\\' || c < ' ' ||
			    c == 127 || (i == 0 && c == '~')) {
				snprintf(out + len, 4, "\\%02x", c);
				len += 3;
			} else {
				out[len++] = (char)c;
			}
		}
		free(enc);
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	out[len] = '\0';
	return out;
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
archive_folder_decode(const char *dir)
{
	size_t n = strlen(dir), len = 0;
	char *out, *level;
	const char *p;

	if (n < 2 || dir[0] != '.' || strcmp(dir, "..") == 0)
		return NULL;
	/* Decoded names are never longer than the directory's: escapes
	 * shrink, and UTF-8 takes at most as many bytes as modified UTF-7
	 * for the same characters plus the shift marks. */
	out = xmalloc(4 * n + 1);
	level = xmalloc(n + 1);
	p = dir + 1;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t m = dot != NULL ? (size_t)(dot - p) : strlen(p), k = 0;
		char *dec;

		if (m == 0)
			goto bad;
		for (size_t i = 0; i < m; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c == '\\') {
				int hi, lo;

				if (i + 2 >= m)
					goto bad;
				hi = hex(p[i + 1]);
				lo = hex(p[i + 2]);
				if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
					goto bad;
				c = (unsigned char)(hi * 16 + lo);
				i += 2;
			}
			if (c < ' ' || c == 127 || c == '/')
				goto bad;
			level[k++] = (char)c;
		}
		level[k] = '\0';
		dec = mutf7_decode(level);
		/* A '/' inside a level (\2f, or hidden in modified
		 * UTF-7) has no store spelling: '/' separates levels. */
		if (dec == NULL || *dec == '\0' || strchr(dec, '/') != NULL ||
		    len + 1 + strlen(dec) > 4 * n) {
			free(dec);
			goto bad;
		}
		if (len > 0)
			out[len++] = '/';
		append(out, &len, dec, strlen(dec));
		free(dec);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	out[len] = '\0';
	free(level);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < ' ' || c == 127)
			goto bad_out;
	}
	return out;
bad:
	free(level);
bad_out:
	free(out);
	return NULL;
}
