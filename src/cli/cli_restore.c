/*
 * cli_restore: `postern restore DIR`: a backup (cli_backup.c) into the
 * configured data directory, which must be empty or absent; restore never
 * overwrites. Every file is checked against the MANIFEST before anything
 * is written (no unlisted, missing or linked file, no path outside the
 * backup's layout), and its SHA-256 again while it is copied; the
 * database copy gets SQLite's integrity check and every blob it names
 * must have been restored. store.db is renamed into place last, after one
 * syncfs(2) of the data directory's file system, so a restore cut short
 * leaves no store that looks whole. A failed restore removes what it
 * wrote. Files are written as the server's user ([server] user), 0600,
 * directories 0700, never through a link (O_EXCL|O_NOFOLLOW).
 */
#include "cli/cli.h"
#include "cli/cli_backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

static const char usage[] = "postern restore DIR [--json] [-c FILE]";

/* Where store.db is copied and checked before it gets its name. */
#define RESTORE_DB_TMP STORE_DB_NAME ".restore"

struct restore {
	const char *dir, *data_dir;
	int dirfd, data_fd;
	struct backup_manifest m;
	char **made;		/* paths written, for the clean-up */
	size_t nmade;
	uint64_t bytes;
};

static void
made_add(struct restore *r, const char *path)
{
	r->made = xrealloc(r->made, (r->nmade + 1) * sizeof(*r->made));
	r->made[r->nmade++] = xstrdup(path);
}

/* Removes every file and directory this restore made, deepest first, so
 * that the data directory is empty again. */
static void
cleanup(struct restore *r)
{
	static const char *const dirs[] = { "dkim", "tls" };
	char name[16];

	for (size_t i = r->nmade; i-- > 0;) {
		if (unlinkat(r->data_fd, r->made[i], 0) < 0 && errno != ENOENT)
			fprintf(stderr, "postern: %s/%s: cannot remove: %s\n",
			    r->data_dir, r->made[i], strerror(errno));
	}
	for (unsigned i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "blobs/%02x", i);
		unlinkat(r->data_fd, name, AT_REMOVEDIR);
	}
	unlinkat(r->data_fd, "blobs", AT_REMOVEDIR);
	for (size_t i = 0; i < 2; i++)
		unlinkat(r->data_fd, dirs[i], AT_REMOVEDIR);
}

/* Copies DIR/from to DATA/to, checking size and SHA-256 against e. */
static int
file_restore(struct restore *r, const struct backup_entry *e,
    const char *to)
{
	unsigned char sha[AUTH_SHA256_LEN];
	const char *name;
	uint64_t size;
	int in, out, parent, rc = -1;

	in = backup_open_read(r->dirfd, e->path);
	if (in < 0) {
		cli_fail("%s/%s: %s", r->dir, e->path, errno == ELOOP ?
		    "is a symbolic link (or under one)" : strerror(errno));
		return -1;
	}
	parent = backup_parent_open(r->data_fd, to, true, &name);
	if (parent < 0) {
		cli_fail("%s/%s: %s", r->data_dir, to, strerror(errno));
		close(in);
		return -1;
	}
	out = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (out < 0) {
		cli_fail("%s/%s: cannot create (restore never overwrites): %s",
		    r->data_dir, to, strerror(errno));
		goto out;
	}
	made_add(r, to);
	if (backup_copy_fd(in, out, &size, sha) < 0)
		cli_fail("%s/%s: cannot copy: %s", r->data_dir, to,
		    strerror(errno));
	else if (size != e->size)
		cli_fail("%s/%s: %" PRIu64 " bytes, the MANIFEST says %" PRIu64
		    "; nothing restored", r->dir, e->path, size, e->size);
	else if (memcmp(sha, e->sha, sizeof(sha)) != 0)
		cli_fail("%s/%s: SHA-256 differs from the MANIFEST's; nothing "
		    "restored", r->dir, e->path);
	else if (close(out) < 0)
		cli_fail("%s/%s: %s", r->data_dir, to, strerror(errno));
	else
		rc = 0;
	if (rc < 0)
		close(out);
	else
		r->bytes += size;
out:
	close(parent);
	close(in);
	return rc;
}

/* Whether the data directory holds nothing; names the first entry. */
static bool
is_data_empty(int fd, char *first, size_t len)
{
	int dup_fd = dup(fd);
	struct dirent *de;
	bool is_empty = true;
	DIR *dp;

	if (dup_fd < 0 || (dp = fdopendir(dup_fd)) == NULL) {
		if (dup_fd >= 0)
			close(dup_fd);
		snprintf(first, len, "(cannot read it)");
		return false;
	}
	rewinddir(dp);
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			snprintf(first, len, "%s", de->d_name);
			is_empty = false;
			break;
		}
	}
	closedir(dp);
	return is_empty;
}

static int
data_dir_check(const char *data_dir)
{
	char first[256];
	int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : cli_fail("data_dir %s: %s",
		    data_dir, strerror(errno));
	if (!is_data_empty(fd, first, sizeof(first))) {
		close(fd);
		return cli_fail("data_dir %s is not empty (it holds '%s'); "
		    "restore goes only into an empty or new data directory "
		    "and never overwrites", data_dir, first);
	}
	close(fd);
	return 0;
}

/* The database copy, checked where it was restored; every blob it names
 * must be in the MANIFEST, of its size. */
static int
db_check(struct restore *r)
{
	struct store_snapshot_blob *blobs;
	char *path = xasprintf("%s/%s", r->data_dir, RESTORE_DB_TMP);
	char err[1024];
	size_t n;
	int64_t schema;
	int rc = 0;

	if (store_snapshot_file_check(path, &blobs, &n, &schema, err,
	    sizeof(err)) < 0) {
		rc = cli_fail("%s/%s: %s", r->dir, STORE_DB_NAME, err);
		goto out;
	}
	if (schema != r->m.schema)
		rc = cli_fail("%s/%s: schema version %" PRId64 ", the MANIFEST "
		    "says %" PRId64, r->dir, STORE_DB_NAME, schema,
		    r->m.schema);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char bpath[64];
		struct backup_entry *e;

		store_blob_path(blobs[i].id, bpath, sizeof(bpath));
		e = backup_manifest_find(&r->m, bpath);
		if (e == NULL || e->size != blobs[i].size)
			rc = cli_fail("%s/%s: blob %" PRId64 " of %s is %s",
			    r->dir, bpath, blobs[i].id, STORE_DB_NAME,
			    e == NULL ? "not in the backup" :
			    "not of the size the store says");
	}
	free(blobs);
out:
	free(path);
	return rc;
}

static int
restore_run(struct restore *r, const struct config *cfg,
    const char *config_path, bool is_json)
{
	const struct backup_entry *db = NULL;
	int rc;

	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (r->dirfd < 0)
		return cli_fail("%s: %s", r->dir, errno == ELOOP ||
		    errno == ENOTDIR ? "not a directory (or a symbolic link)" :
		    strerror(errno));
	/* Everything about the backup is checked before a byte is
	 * written. */
	if (backup_manifest_read(r->dirfd, r->dir, BACKUP_MANIFEST,
	    &r->m) < 0)
		return CLI_EXIT_FAIL;
	if (backup_tree_check(r->dirfd, r->dir, &r->m) > 0)
		return cli_fail("%s: not restored: the backup is not as its "
		    "MANIFEST says", r->dir);
	db = backup_manifest_find(&r->m, STORE_DB_NAME);
	if (db == NULL)
		return cli_fail("%s/%s: not in the MANIFEST", r->dir,
		    STORE_DB_NAME);
	if (data_dir_check(cfg->data_dir) != 0)
		return CLI_EXIT_FAIL;
	rc = cli_user_become(config_path, cfg->user, cfg->data_dir);
	if (rc != 0)
		return rc;
	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST)
		return cli_fail("data_dir %s: cannot create: %s",
		    cfg->data_dir, strerror(errno));
	r->data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->data_fd < 0)
		return cli_fail("data_dir %s: %s", cfg->data_dir,
		    strerror(errno));
	/* Again, now as the user that writes: nobody slipped a file in. */
	if (data_dir_check(cfg->data_dir) != 0)
		return CLI_EXIT_FAIL;
	if (fchmod(r->data_fd, 0700) < 0)
		return cli_fail("data_dir %s: %s", cfg->data_dir,
		    strerror(errno));
	rc = CLI_EXIT_FAIL;
	for (size_t i = 0; i < r->m.n; i++) {
		const struct backup_entry *e = &r->m.files[i];

		if (e == db)
			continue;
		if (file_restore(r, e, e->path) < 0)
			goto fail;
	}
	if (file_restore(r, db, RESTORE_DB_TMP) < 0 || db_check(r) != 0)
		goto fail;
	if (syncfs(r->data_fd) < 0) {
		cli_fail("data_dir %s: cannot sync: %s", cfg->data_dir,
		    strerror(errno));
		goto fail;
	}
	if (renameat(r->data_fd, RESTORE_DB_TMP, r->data_fd,
	    STORE_DB_NAME) < 0 || fsync(r->data_fd) < 0) {
		cli_fail("data_dir %s/%s: %s", cfg->data_dir, STORE_DB_NAME,
		    strerror(errno));
		goto fail;
	}
	if (is_json)
		printf("{\"files\": %zu, \"bytes\": %" PRIu64 ", \"schema\": %"
		    PRId64 "}\n", r->m.n, r->bytes, r->m.schema);
	else
		printf("restored %s (made %s) into %s: %zu files, %" PRIu64
		    " bytes\n", r->dir, r->m.created, cfg->data_dir, r->m.n,
		    r->bytes);
	return CLI_EXIT_OK;
fail:
	cleanup(r);
	fsync(r->data_fd);
	return rc;
}

int
cli_restore(int argc, char **argv)
{
	struct restore r = { .dirfd = -1, .data_fd = -1 };
	const char *config_path, *env = getenv("POSTERN_CONFIG");
	bool is_json = false;
	struct config *cfg;
	char err[1024];
	int rc;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	config_path = env != NULL && *env != '\0' ? env : CLI_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			is_json = true;
		} else if ((strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			config_path = argv[++i];
		} else if (argv[i][0] != '-' && r.dir == NULL) {
			r.dir = argv[i];
		} else {
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
	}
	if (r.dir == NULL) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	cfg = config_load(config_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CLI_EXIT_USAGE;
	}
	log_configure(LOG_LEVEL_WARN, false);
	r.data_dir = cfg->data_dir;
	rc = restore_run(&r, cfg, config_path, is_json);
	for (size_t i = 0; i < r.nmade; i++)
		free(r.made[i]);
	free(r.made);
	if (r.dirfd >= 0)
		close(r.dirfd);
	if (r.data_fd >= 0)
		close(r.data_fd);
	backup_manifest_deinit(&r.m);
	config_free(&cfg);
	return rc;
}
