/*
 * libFuzzer harness for the Maildir names of src/archive. The input (to
 * its first NUL) is a message file name, a folder directory name and a
 * store mailbox name; the whole input is a dovecot-keywords file.
 *
 * Checked: the flags of a name survive formatting a new name and parsing
 * it again; a folder name encodes to one path component that is neither
 * "." nor ".." and starts with '.', and decodes back to itself when it
 * holds no control character; a directory name that decodes gives a name
 * without control characters or empty levels that encodes to a directory
 * which decodes to the same name; keywords parsed are atoms, letter
 * lookups find them, and no leak.
 *
 * fuzz-sources: src/archive/archive_maildir.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "lib/util.h"

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_maildir_name: invariant broken: %s\n",
		    what);
		abort();
	}
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < ' ' || *s == 127)
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size), *enc, *dec;
	struct archive_maildir_info info, again;
	struct archive_maildir_keywords k;
	char name[ARCHIVE_MAILDIR_NAME_MAX];
	size_t bad_line;

	archive_maildir_name_parse(s, &info);
	if (archive_maildir_name_format(name, sizeof(name), info.time, "u",
	    "h", 1, 2, &info) > 0) {
		archive_maildir_name_parse(name, &again);
		check(again.flags == info.flags &&
		    again.keywords == info.keywords &&
		    again.is_forwarded == info.is_forwarded,
		    "flags changed through a name");
		check(strchr(name, '/') == NULL, "a '/' in a file name");
	}

	enc = archive_folder_encode(s);
	if (enc != NULL && *enc != '\0') {
		check(enc[0] == '.' && strchr(enc, '/') == NULL &&
		    strcmp(enc, ".") != 0 && strcmp(enc, "..") != 0,
		    "a folder directory that is not one safe component");
		dec = archive_folder_decode(enc);
		if (!has_control(s)) {
			check(dec != NULL && strcmp(dec, s) == 0,
			    "encode then decode changed the name");
		}
		free(dec);
	}
	free(enc);

	dec = archive_folder_decode(s);
	if (dec != NULL) {
		check(!has_control(dec) && *dec != '\0' && dec[0] != '/' &&
		    strstr(dec, "//") == NULL &&
		    dec[strlen(dec) - 1] != '/', "a bad decoded name");
		enc = archive_folder_encode(dec);
		if (strcmp(dec, "INBOX") != 0) {
			char *back;

			check(enc != NULL, "a decoded name does not encode");
			back = archive_folder_decode(enc);
			check(back != NULL && strcmp(back, dec) == 0,
			    "decode, encode, decode changed the name");
			free(back);
		}
		free(enc);
		free(dec);
	}
	free(s);

	archive_maildir_keywords_parse(&k, (const char *)data, size,
	    &bad_line);
	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS; i++) {
		if (k.names[i] == NULL)
			continue;
		check(*k.names[i] != '\0' && !has_control(k.names[i]) &&
		    strchr(k.names[i], ' ') == NULL, "a bad keyword");
		check(archive_maildir_keywords_letter(&k, k.names[i],
		    strlen(k.names[i])) >= 0, "a keyword has no letter");
	}
	archive_maildir_keywords_deinit(&k);
	return 0;
}
