/*
 * cli_backup: what `postern backup`, `postern backup verify` and `postern
 * restore` share (cli_backup.c, cli_restore.c): the MANIFEST of a backup
 * directory, the rule for the paths it may name, the walk that finds
 * unlisted, missing and odd files, and copying with SHA-256. Main thread
 * only. DESIGN.md, Storage: backup, describes the format.
 *
 * A backup directory holds MANIFEST, store.db, blobs/xx/<id>, and, when
 * the data directory had them, auth.secret, dkim/NAME and tls/NAME. Every
 * file is 0600, every directory 0700; nothing in it is ever opened through
 * a symbolic link.
 */
#ifndef POSTERN_CLI_BACKUP_H
#define POSTERN_CLI_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

#define BACKUP_MANIFEST "MANIFEST"
#define BACKUP_FORMAT 1
/* Longest MANIFEST line, newline included; longest path in it. */
#define BACKUP_LINE_MAX 512
#define BACKUP_PATH_MAX 240

struct backup_entry {
	char *path;
	uint64_t size;
	unsigned char sha[AUTH_SHA256_LEN];
	bool is_seen;		/* found by the walk */
};

struct backup_manifest {
	int64_t format;
	char created[32];	/* RFC 3339, UTC */
	int64_t schema;
	char source[40];	/* the data directory's backup id */
	struct backup_entry *files;	/* sorted by path */
	size_t n, cap;
};

/* Whether path is one a backup holds (store.db, auth.secret,
 * blobs/xx/<id> in its right directory, dkim/NAME, tls/NAME with NAME of
 * [A-Za-z0-9._+@-], not starting with '.'): never absolute, never "..". */
bool is_backup_path(const char *path);
/* Whether name may be a file of dkim/ or tls/. */
bool is_backup_name(const char *name);

/* Reads DIR/name (dirfd) into *m, checking every line: header, paths,
 * sizes, hashes, no path twice, the count at the end. dir names DIR in
 * messages. Returns 0, or -1 after printing what is wrong (file and
 * line). */
int backup_manifest_read(int dirfd, const char *dir, const char *name,
    struct backup_manifest *m);
void backup_manifest_deinit(struct backup_manifest *m);
/* Adds an entry (takes nothing: path is copied). */
void backup_manifest_add(struct backup_manifest *m, const char *path,
    uint64_t size, const unsigned char sha[AUTH_SHA256_LEN]);
/* Sorts the entries by path (before lookups and writing). */
void backup_manifest_sort(struct backup_manifest *m);
/* The entry of path in a sorted manifest, or NULL. */
struct backup_entry *backup_manifest_find(struct backup_manifest *m,
    const char *path);

/* Walks DIR (dirfd) and marks the entries of m that have their file.
 * Prints (naming DIR/PATH) every symbolic link, every file or directory
 * that is not a regular file where one belongs, every file the manifest
 * does not list and every listed file that is missing. Returns the number
 * of problems. */
int backup_tree_check(int dirfd, const char *dir, struct backup_manifest *m);

/* Copies in to out (out may be -1: only hashes), returning the bytes read
 * in *size_out and their SHA-256. Returns 0, or -1 with errno set. */
int backup_copy_fd(int in, int out, uint64_t *size_out,
    unsigned char sha_out[AUTH_SHA256_LEN]);
/* Opens path (relative to dirfd, "a/b/c") for reading, never through a
 * symbolic link; a directory component that is a link fails too.
 * Returns an fd, or -1 with errno set (ELOOP for a link, EINVAL for
 * what is not a regular file). */
int backup_open_read(int dirfd, const char *path);
/* The directory of path's parent under dirfd, created (0700) level by
 * level when is_create, never through a symbolic link. *name_out points
 * at path's last component. Returns an fd, or -1 with errno set. */
int backup_parent_open(int dirfd, const char *path, bool is_create,
    const char **name_out);
/* Lowercase hex of a digest (out: 2 * AUTH_SHA256_LEN + 1 bytes). */
void backup_hex(const unsigned char sha[AUTH_SHA256_LEN], char *out);

#endif
