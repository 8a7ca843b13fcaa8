/*
 * cli_backup: `postern backup DIR [--incremental] [--link]` (an online,
 * consistent copy of the data directory while the server runs) and
 * `postern backup verify DIR`; the MANIFEST and the file helpers that
 * `postern restore` (cli_restore.c) shares through cli_backup.h.
 * DESIGN.md, Storage: backup.
 */
#include "cli/cli.h"
#include "cli/cli_backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

static const char usage[] =
    "postern backup DIR [--incremental] [--link] [--json] [-c FILE]\n"
    "       postern backup verify DIR [--json]";

/* The data directory's own id, kept in DATA/backup.id (not backed up):
 * an incremental backup only continues one made from the same data
 * directory, since a restored copy numbers its new blobs afresh. */
#define BACKUP_ID_FILE "backup.id"
#define BACKUP_ID_LEN 32
#define COPY_BUF (256 * 1024)

/* cli_fail() for functions that return -1. */
static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* ---- Paths and the MANIFEST ------------------------------------------- */

bool
is_backup_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 200 || name[0] == '.')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._+@-", *p) != NULL))
			return false;
	}
	return true;
}

/* A decimal number without sign or leading zero, at most 19 digits. */
static bool
is_number(const char *s, size_t len, uint64_t *n_out)
{
	uint64_t n = 0;

	if (len == 0 || len > 19 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*n_out = n;
	return true;
}

bool
is_backup_path(const char *path)
{
	size_t len = strlen(path);
	uint64_t id;
	char want[64];

	if (len == 0 || len > BACKUP_PATH_MAX)
		return false;
	if (strcmp(path, STORE_DB_NAME) == 0 ||
	    strcmp(path, "auth.secret") == 0)
		return true;
	if (strncmp(path, "dkim/", 5) == 0)
		return is_backup_name(path + 5);
	if (strncmp(path, "tls/", 4) == 0)
		return is_backup_name(path + 4);
	/* blobs/xx/<id>, exactly as the store names it. */
	if (strncmp(path, "blobs/", 6) != 0 || len < 10 || path[8] != '/' ||
	    !is_number(path + 9, len - 9, &id) || id == 0 ||
	    id > INT64_MAX)
		return false;
	store_blob_path((int64_t)id, want, sizeof(want));
	return strcmp(path, want) == 0;
}

void
backup_hex(const unsigned char sha[AUTH_SHA256_LEN], char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < AUTH_SHA256_LEN; i++) {
		out[2 * i] = hex[sha[i] >> 4];
		out[2 * i + 1] = hex[sha[i] & 15];
	}
	out[2 * AUTH_SHA256_LEN] = '\0';
}

static bool
is_hex_sha(const char *s, size_t len, unsigned char sha[AUTH_SHA256_LEN])
{
	if (len != 2 * AUTH_SHA256_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' :
		    c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return false;
		if (i % 2 == 0)
			sha[i / 2] = (unsigned char)(v << 4);
		else
			sha[i / 2] |= (unsigned char)v;
	}
	return true;
}

void
backup_manifest_add(struct backup_manifest *m, const char *path,
    uint64_t size, const unsigned char sha[AUTH_SHA256_LEN])
{
	struct backup_entry *e;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->files = xrealloc(m->files, m->cap * sizeof(*m->files));
	}
	e = &m->files[m->n++];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->size = size;
	memcpy(e->sha, sha, AUTH_SHA256_LEN);
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct backup_entry *)a)->path,
	    ((const struct backup_entry *)b)->path);
}

void
backup_manifest_sort(struct backup_manifest *m)
{
	if (m->n > 1)
		qsort(m->files, m->n, sizeof(*m->files), entry_cmp);
}

struct backup_entry *
backup_manifest_find(struct backup_manifest *m, const char *path)
{
	struct backup_entry key = { .path = (char *)path };

	if (m->n == 0)
		return NULL;
	return bsearch(&key, m->files, m->n, sizeof(*m->files), entry_cmp);
}

void
backup_manifest_deinit(struct backup_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->files[i].path);
	free(m->files);
	memset(m, 0, sizeof(*m));
}

/* "WORD VALUE" with VALUE a number. */
static bool
is_header_number(const char *line, const char *word, int64_t *n_out)
{
	size_t w = strlen(word);
	uint64_t n;

	if (strncmp(line, word, w) != 0 || line[w] != ' ' ||
	    !is_number(line + w + 1, strlen(line + w + 1), &n) ||
	    n > INT64_MAX)
		return false;
	*n_out = (int64_t)n;
	return true;
}

/* One "file SHA SIZE PATH" line. */
static const char *
file_line_parse(struct backup_manifest *m, const char *line)
{
	const char *sha = line + 5, *size, *path;
	unsigned char digest[AUTH_SHA256_LEN];
	uint64_t n;

	if (strncmp(line, "file ", 5) != 0)
		return "expected 'file SHA256 SIZE PATH' or 'end COUNT'";
	size = strchr(sha, ' ');
	if (size == NULL || !is_hex_sha(sha, (size_t)(size - sha), digest))
		return "bad SHA-256 (64 lowercase hex digits)";
	size++;
	path = strchr(size, ' ');
	if (path == NULL || !is_number(size, (size_t)(path - size), &n) ||
	    n > INT64_MAX)
		return "bad size";
	path++;
	if (!is_backup_path(path))
		return "path is not one a backup holds (no '..', no "
		    "absolute path, only store.db, auth.secret, "
		    "blobs/xx/ID, dkim/NAME, tls/NAME)";
	backup_manifest_add(m, path, n, digest);
	return NULL;
}

int
backup_manifest_read(int dirfd, const char *dir, const char *name,
    struct backup_manifest *m)
{
	char line[BACKUP_LINE_MAX + 2];
	const char *why = NULL;
	int64_t count = -1;
	size_t lineno = 0;
	struct stat sb;
	FILE *f;
	int fd;

	memset(m, 0, sizeof(*m));
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		cli_fail("%s/%s: %s", dir, name, fd < 0 && errno == ELOOP ?
		    "is a symbolic link" : fd < 0 ? strerror(errno) :
		    "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	f = fdopen(fd, "r");
	while (why == NULL && fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);

		lineno++;
		if (len == 0 || line[len - 1] != '\n') {
			why = len > BACKUP_LINE_MAX ? "line too long" :
			    "line without its newline (cut short?)";
			break;
		}
		line[--len] = '\0';
		if (memchr(line, '\0', len) != NULL || strlen(line) != len) {
			why = "NUL byte in the line";
			break;
		}
		if (count >= 0) {
			why = "text after the 'end' line";
		} else if (lineno == 1) {
			if (!is_header_number(line, "postern-backup",
			    &m->format))
				why = "not a postern backup MANIFEST (first "
				    "line is not 'postern-backup N')";
			else if (m->format != BACKUP_FORMAT)
				why = "format version not known to this "
				    "postern";
		} else if (lineno == 2) {
			if (strncmp(line, "created ", 8) != 0 ||
			    len - 8 >= sizeof(m->created))
				why = "expected 'created TIME'";
			else
				memcpy(m->created, line + 8, len - 8 + 1);
		} else if (lineno == 3) {
			if (!is_header_number(line, "schema", &m->schema))
				why = "expected 'schema N'";
		} else if (lineno == 4) {
			if (strncmp(line, "source ", 7) != 0 ||
			    len - 7 != BACKUP_ID_LEN)
				why = "expected 'source ID'";
			else
				memcpy(m->source, line + 7, len - 7 + 1);
		} else if (strncmp(line, "end ", 4) == 0) {
			if (!is_header_number(line, "end", &count) ||
			    (uint64_t)count != m->n)
				why = "the 'end' count differs from the files "
				    "listed";
		} else {
			why = file_line_parse(m, line);
		}
	}
	if (why == NULL && ferror(f))
		why = strerror(errno);
	if (why == NULL && count < 0) {
		why = "no 'end' line: the MANIFEST is cut short";
		lineno++;
	}
	fclose(f);
	if (why == NULL) {
		backup_manifest_sort(m);
		for (size_t i = 1; i < m->n && why == NULL; i++) {
			if (strcmp(m->files[i - 1].path,
			    m->files[i].path) == 0) {
				cli_fail("%s/%s: %s is listed twice", dir, name,
				    m->files[i].path);
				backup_manifest_deinit(m);
				return -1;
			}
		}
		return 0;
	}
	cli_fail("%s/%s:%zu: %s", dir, name, lineno, why);
	backup_manifest_deinit(m);
	return -1;
}

/* ---- Files ------------------------------------------------------------ */

int
backup_copy_fd(int in, int out, uint64_t *size_out,
    unsigned char sha_out[AUTH_SHA256_LEN])
{
	static char buf[COPY_BUF];
	struct auth_sha256 *h = auth_sha256_new();
	uint64_t total = 0;
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(in, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		auth_sha256_update(h, buf, (size_t)n);
		for (ssize_t done = 0; out >= 0 && done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto fail;
			done += w;
		}
		off += n;
		total += (uint64_t)n;
	}
	auth_sha256_final(&h, sha_out);
	*size_out = total;
	return 0;
fail:
	{
		int e = errno;

		auth_sha256_final(&h, sha_out);
		errno = e;
	}
	return -1;
}

int
backup_parent_open(int dirfd, const char *path, bool is_create,
    const char **name_out)
{
	int fd = dup(dirfd);
	const char *p = path;

	for (const char *slash; fd >= 0 && (slash = strchr(p, '/')) != NULL;
	    p = slash + 1) {
		char comp[NAME_MAX + 1];
		size_t len = (size_t)(slash - p);
		int next;

		if (len == 0 || len > NAME_MAX) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next < 0 && errno == ENOENT && is_create &&
		    (mkdirat(fd, comp, 0700) == 0 || errno == EEXIST))
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOTDIR)
			errno = ELOOP;	/* a link or a file where a
					 * directory belongs */
		close(fd);
		fd = next;
	}
	*name_out = p;
	return fd;
}

int
backup_open_read(int dirfd, const char *path)
{
	const char *name;
	int dfd = backup_parent_open(dirfd, path, false, &name), fd, e;
	struct stat sb;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	e = errno;
	close(dfd);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* What errno says about a file of the backup, in words. */
static const char *
file_error(int e)
{
	if (e == ELOOP)
		return "is a symbolic link (or under one)";
	if (e == EINVAL)
		return "is not a regular file";
	return strerror(e);
}

/* ---- The walk --------------------------------------------------------- */

static int
walk(int dfd, const char *dir, const char *prefix, int depth,
    struct backup_manifest *m)
{
	int problems = 0;
	struct dirent *de;
	DIR *dp;
	int fd = dup(dfd);

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		cli_fail("%s/%s: cannot read: %s", dir, prefix,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	rewinddir(dp);
	while ((de = readdir(dp)) != NULL) {
		char path[BACKUP_PATH_MAX + NAME_MAX + 2];
		struct backup_entry *e;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    *prefix ? "/" : "", de->d_name);
		if (depth == 0 && strcmp(de->d_name, BACKUP_MANIFEST) == 0)
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			cli_fail("%s/%s: %s", dir, path, strerror(errno));
			problems++;
		} else if (S_ISLNK(sb.st_mode)) {
			cli_fail("%s/%s: is a symbolic link", dir, path);
			problems++;
		} else if (S_ISDIR(sb.st_mode) && depth < 2) {
			int sub = openat(dfd, de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				cli_fail("%s/%s: %s", dir, path,
				    strerror(errno));
				problems++;
				continue;
			}
			problems += walk(sub, dir, path, depth + 1, m);
			close(sub);
		} else if (!S_ISREG(sb.st_mode)) {
			cli_fail("%s/%s: is not a regular file", dir, path);
			problems++;
		} else if ((e = backup_manifest_find(m, path)) == NULL) {
			cli_fail("%s/%s: not listed in the MANIFEST", dir,
			    path);
			problems++;
		} else {
			e->is_seen = true;
		}
	}
	closedir(dp);
	return problems;
}

int
backup_tree_check(int dirfd, const char *dir, struct backup_manifest *m)
{
	int problems = walk(dirfd, dir, "", 0, m);

	for (size_t i = 0; i < m->n; i++) {
		if (!m->files[i].is_seen) {
			cli_fail("%s/%s: listed in the MANIFEST but missing",
			    dir, m->files[i].path);
			problems++;
		}
	}
	return problems;
}

/* ---- verify ----------------------------------------------------------- */

/* Checks every file's size and hash, then the database copy. */
static int
verify_run(const char *dir, bool is_json)
{
	struct backup_manifest m;
	struct store_snapshot_blob *blobs = NULL;
	size_t nblobs = 0;
	int64_t schema;
	uint64_t bytes = 0;
	int problems, dirfd, db_fd = -1;
	char err[1024], *db_path;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return cli_fail("%s: %s", dir, errno == ELOOP || errno ==
		    ENOTDIR ? "not a directory (or a symbolic link)" :
		    strerror(errno));
	if (backup_manifest_read(dirfd, dir, BACKUP_MANIFEST, &m) < 0) {
		close(dirfd);
		return CLI_EXIT_FAIL;
	}
	problems = backup_tree_check(dirfd, dir, &m);
	for (size_t i = 0; i < m.n; i++) {
		struct backup_entry *e = &m.files[i];
		unsigned char sha[AUTH_SHA256_LEN];
		uint64_t size;
		int fd;

		if (!e->is_seen)
			continue;
		fd = backup_open_read(dirfd, e->path);
		if (fd < 0 || backup_copy_fd(fd, -1, &size, sha) < 0) {
			cli_fail("%s/%s: %s", dir, e->path,
			    file_error(errno));
			problems++;
		} else if (size != e->size) {
			cli_fail("%s/%s: %" PRIu64 " bytes, the MANIFEST says "
			    "%" PRIu64, dir, e->path, size, e->size);
			problems++;
		} else if (memcmp(sha, e->sha, sizeof(sha)) != 0) {
			cli_fail("%s/%s: SHA-256 differs from the MANIFEST's",
			    dir, e->path);
			problems++;
		}
		bytes += e->size;
		/* The database is checked through the descriptor whose
		 * bytes were hashed (store_snapshot_fd_check). */
		if (fd >= 0 && db_fd < 0 && strcmp(e->path, STORE_DB_NAME) ==
		    0)
			db_fd = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (backup_manifest_find(&m, STORE_DB_NAME) == NULL) {
		cli_fail("%s/%s: not in the MANIFEST", dir, STORE_DB_NAME);
		problems++;
	} else if (problems == 0) {
		/* Only a database whose bytes are the listed ones is
		 * opened. */
		db_path = xasprintf("%s/%s", dir, STORE_DB_NAME);
		if (db_fd < 0) {
			cli_fail("%s: not read", db_path);
			problems++;
		} else if (store_snapshot_fd_check(db_fd, &blobs, &nblobs,
		    &schema, err, sizeof(err)) < 0) {
			cli_fail("%s: %s", db_path, err);
			problems++;
		} else if (schema != m.schema) {
			cli_fail("%s: schema version %" PRId64 ", the MANIFEST "
			    "says %" PRId64, db_path, schema, m.schema);
			problems++;
		}
		for (size_t i = 0; i < nblobs; i++) {
			char path[64];
			struct backup_entry *e;

			store_blob_path(blobs[i].id, path, sizeof(path));
			e = backup_manifest_find(&m, path);
			if (e == NULL) {
				cli_fail("%s/%s: blob %" PRId64 " of %s is "
				    "not in the backup", dir, path,
				    blobs[i].id, STORE_DB_NAME);
				problems++;
			} else if (e->size != blobs[i].size) {
				cli_fail("%s/%s: %" PRIu64 " bytes, %s says "
				    "%" PRIu64, dir, path, e->size,
				    STORE_DB_NAME, blobs[i].size);
				problems++;
			}
		}
		free(blobs);
		free(db_path);
	}
	if (problems == 0) {
		if (is_json)
			printf("{\"ok\": true, \"files\": %zu, \"blobs\": %zu, "
			    "\"bytes\": %" PRIu64 ", \"schema\": %" PRId64
			    "}\n", m.n, nblobs, bytes, m.schema);
		else
			printf("backup %s: %zu files, %zu blobs, %" PRIu64
			    " bytes, schema %" PRId64 ", made %s: all "
			    "verified\n", dir, m.n, nblobs, bytes, m.schema,
			    m.created);
	} else {
		cli_fail("backup %s: %d problem%s", dir, problems,
		    problems == 1 ? "" : "s");
	}
	backup_manifest_deinit(&m);
	if (db_fd >= 0)
		close(db_fd);
	close(dirfd);
	return problems == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- backup ----------------------------------------------------------- */

struct backup {
	const char *dir;	/* as given */
	int dirfd;
	bool is_incremental, is_link, is_json, is_tty;
	struct store *st;
	struct store_snapshot *snap;
	struct backup_manifest old;	/* the previous run's, or empty */
	struct backup_manifest m;	/* this run's */
	int xx_fd[256];		/* DIR/blobs/xx, opened on first use */
	size_t blobs, blobs_copied, blobs_kept, blobs_removed;
	uint64_t bytes;		/* written (or linked) */
	struct timespec started, last_shown;
};

static double
seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* A progress line on a terminal, at most ten times a second. */
static void
progress_show(struct backup *b, bool is_last, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
progress_show(struct backup *b, bool is_last, const char *fmt, ...)
{
	va_list ap;

	if (!b->is_tty)
		return;
	if (!is_last && seconds_since(&b->last_shown) < 0.1)
		return;
	clock_gettime(CLOCK_MONOTONIC, &b->last_shown);
	fputs("\rbackup: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\033[K", stderr);
	if (is_last)
		fputc('\n', stderr);
}

static void
on_db_progress(void *arg, uint64_t done, uint64_t total)
{
	progress_show(arg, false, "metadata %" PRIu64 "/%" PRIu64 " pages",
	    done, total);
}

/* Creates DIR/path (0600) anew: a name left by an earlier run is removed
 * first (never followed), then O_EXCL. Returns an fd, or -1 after
 * printing why. */
static int
file_create(int parent, const char *dir, const char *path, const char *name)
{
	int fd;

	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT) {
		cli_fail("%s/%s: cannot remove: %s", dir, path,
		    strerror(errno));
		return -1;
	}
	fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		cli_fail("%s/%s: cannot create: %s", dir, path,
		    strerror(errno));
	return fd;
}

/* Starts writing fd's pages to disk without waiting. The syncfs(2) before
 * the MANIFEST then finds little left to do; left dirty until then, tens
 * of megabytes would be flushed at once, and on the data directory's file
 * system the server's own sync of a batch would wait behind them (a
 * pause of seconds for SMTP clients, measured with bench/backup_bench.py). */
static void
writeback_start(int fd)
{
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* Copies in (the data directory's file) to DIR/path and lists it. */
static int
file_put(struct backup *b, int in, const char *path)
{
	unsigned char sha[AUTH_SHA256_LEN];
	const char *name;
	uint64_t size;
	int parent, out, rc = -1;

	parent = backup_parent_open(b->dirfd, path, true, &name);
	if (parent < 0)
		return fail("%s/%s: %s", b->dir, path,
		    file_error(errno));
	out = file_create(parent, b->dir, path, name);
	if (out >= 0) {
		if (backup_copy_fd(in, out, &size, sha) < 0)
			cli_fail("%s/%s: cannot copy: %s", b->dir, path,
			    strerror(errno));
		else if ((writeback_start(out), close(out)) < 0)
			cli_fail("%s/%s: %s", b->dir, path, strerror(errno));
		else
			rc = 0;
		if (rc < 0)
			close(out);
		out = -1;
	}
	close(parent);
	if (rc == 0) {
		backup_manifest_add(&b->m, path, size, sha);
		b->bytes += size;
	}
	return rc;
}

/* DIR/blobs/xx for blob id, opened (and made) once. */
static int
xx_dir(struct backup *b, int64_t id)
{
	unsigned xx = (unsigned)((id >> 8) & 0xff);
	char path[16];
	const char *name;

	if (b->xx_fd[xx] >= 0)
		return b->xx_fd[xx];
	snprintf(path, sizeof(path), "blobs/%02x/x", xx);
	b->xx_fd[xx] = backup_parent_open(b->dirfd, path, true, &name);
	if (b->xx_fd[xx] < 0)
		cli_fail("%s/blobs/%02x: %s", b->dir, xx, file_error(errno));
	return b->xx_fd[xx];
}

/* Whether DIR/path is already the blob the previous MANIFEST lists with
 * this size: its bytes are read again and must hash to the listed
 * SHA-256 (a copy spoiled since is copied again). */
static bool
is_blob_kept(struct backup *b, const char *path, uint64_t size)
{
	struct backup_entry *e = backup_manifest_find(&b->old, path);
	unsigned char sha[AUTH_SHA256_LEN];
	uint64_t got;
	int fd;
	bool is_kept;

	if (e == NULL || e->size != size)
		return false;
	fd = backup_open_read(b->dirfd, path);
	if (fd < 0)
		return false;
	is_kept = backup_copy_fd(fd, -1, &got, sha) == 0 && got == size &&
	    memcmp(sha, e->sha, sizeof(sha)) == 0;
	close(fd);
	if (is_kept)
		backup_manifest_add(&b->m, path, size, sha);
	return is_kept;
}

static int
blob_put(struct backup *b, const struct store_snapshot_blob *blob)
{
	unsigned char sha[AUTH_SHA256_LEN];
	char path[64];
	const char *name;
	enum store_err serr;
	uint64_t size;
	int dfd, in, out, rc = -1;

	store_blob_path(blob->id, path, sizeof(path));
	if (b->is_incremental && is_blob_kept(b, path, blob->size)) {
		b->blobs_kept++;
		return 0;
	}
	if ((dfd = xx_dir(b, blob->id)) < 0)
		return -1;
	name = strrchr(path, '/') + 1;
	if (b->is_link) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return fail("%s/%s: cannot remove: %s", b->dir,
			    path, strerror(errno));
		if (store_snapshot_blob_link(b->snap, blob->id, dfd,
		    name) < 0)
			return fail("%s/%s: cannot link blob %" PRId64
			    " (--link needs the backup on the data "
			    "directory's file system): %s", b->dir, path,
			    blob->id, strerror(errno));
		in = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		out = -1;
	} else {
		in = store_blob_open(b->st, blob->id, &serr);
		if (in < 0)
			return fail("blob %" PRId64 ": its body file "
			    "cannot be read (%s); run postern store check",
			    blob->id, store_err_text(serr));
		out = file_create(dfd, b->dir, path, name);
		if (out < 0) {
			close(in);
			return -1;
		}
	}
	if (in < 0 || backup_copy_fd(in, out, &size, sha) < 0)
		cli_fail("%s/%s: cannot copy blob %" PRId64 ": %s", b->dir,
		    path, blob->id, strerror(errno));
	else if (size != blob->size)
		cli_fail("blob %" PRId64 ": its body file has %" PRIu64
		    " bytes, the store says %" PRIu64 "; run postern store "
		    "check", blob->id, size, blob->size);
	else if (out >= 0 && (writeback_start(out), close(out)) < 0)
		cli_fail("%s/%s: %s", b->dir, path, strerror(errno));
	else
		rc = 0;
	if (rc < 0 && out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (rc == 0) {
		backup_manifest_add(&b->m, path, size, sha);
		b->bytes += size;
		b->blobs_copied++;
	}
	return rc;
}

/* The files of DATA/sub (dkim, tls) that a restore needs: regular files
 * with a plain name; anything else is named and left out. */
static int
dir_put(struct backup *b, int data_fd, const char *data_dir,
    const char *sub)
{
	int fd = openat(data_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC), rc = 0;
	struct dirent *de;
	DIR *dp;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return fail("%s/%s: %s", data_dir, sub, errno == ELOOP ?
		    "is a symbolic link: not backed up" : strerror(errno));
	}
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return fail("%s/%s: %s", data_dir, sub, strerror(errno));
	}
	while (rc == 0 && (de = readdir(dp)) != NULL) {
		char path[BACKUP_PATH_MAX + NAME_MAX + 2];
		int in;

		if (de->d_name[0] == '.')
			continue;
		in = openat(dirfd(dp), de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (in < 0 || !is_backup_name(de->d_name)) {
			fprintf(stderr, "postern: warning: %s/%s/%s: %s, not "
			    "backed up\n", data_dir, sub, de->d_name,
			    in < 0 ? file_error(errno) : "an unusual name");
			if (in >= 0)
				close(in);
			continue;
		}
		struct stat sb;

		if (fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			close(in);
			continue;	/* a directory: nothing of ours */
		}
		snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
		rc = file_put(b, in, path);
		close(in);
	}
	closedir(dp);
	return rc;
}

/* Incremental: removes the files of DIR/sub/... that this run's MANIFEST
 * does not list (blobs expunged since, keys removed, files of a run that
 * was interrupted). Only our own directories are touched; anything else
 * is left for verify to name. */
static int
stale_remove(struct backup *b, int parent, const char *prefix, int depth)
{
	int fd = openat(parent, depth == 0 ? prefix :
	    strrchr(prefix, '/') + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	struct dirent *de;
	DIR *dp;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		char path[BACKUP_PATH_MAX + NAME_MAX + 2];
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", prefix, de->d_name);
		if (fstatat(dirfd(dp), de->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (depth == 0 && strcmp(prefix, "blobs") == 0)
				stale_remove(b, dirfd(dp), path, 1);
			continue;
		}
		if (backup_manifest_find(&b->m, path) != NULL)
			continue;
		if (unlinkat(dirfd(dp), de->d_name, 0) < 0) {
			cli_fail("%s/%s: cannot remove: %s", b->dir, path,
			    strerror(errno));
			continue;
		}
		if (strncmp(path, "blobs/", 6) == 0)
			b->blobs_removed++;
	}
	closedir(dp);
	return 0;
}

/* Writes MANIFEST last: a temporary file, fsync, rename, fsync of DIR. */
static int
manifest_write(struct backup *b, int64_t schema, const char *source)
{
	char created[32], hex[2 * AUTH_SHA256_LEN + 1];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int fd;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fd = file_create(b->dirfd, b->dir, BACKUP_MANIFEST ".tmp",
	    BACKUP_MANIFEST ".tmp");
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	fprintf(f, "postern-backup %d\ncreated %s\nschema %" PRId64
	    "\nsource %s\n", BACKUP_FORMAT, created, schema, source);
	for (size_t i = 0; i < b->m.n; i++) {
		backup_hex(b->m.files[i].sha, hex);
		fprintf(f, "file %s %" PRIu64 " %s\n", hex, b->m.files[i].size,
		    b->m.files[i].path);
	}
	fprintf(f, "end %zu\n", b->m.n);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		cli_fail("%s/%s.tmp: %s", b->dir, BACKUP_MANIFEST,
		    strerror(errno));
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0 || renameat(b->dirfd, BACKUP_MANIFEST ".tmp",
	    b->dirfd, BACKUP_MANIFEST) < 0 || fsync(b->dirfd) < 0)
		return fail("%s/%s: %s", b->dir, BACKUP_MANIFEST,
		    strerror(errno));
	return 0;
}

/* DATA/backup.id, made on the first backup. */
static int
source_id(int data_fd, const char *data_dir, char out[BACKUP_ID_LEN + 1])
{
	unsigned char raw[BACKUP_ID_LEN / 2];
	char hex[2 * AUTH_SHA256_LEN + 1];
	unsigned char pad[AUTH_SHA256_LEN] = { 0 };
	int fd = openat(data_fd, BACKUP_ID_FILE, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	ssize_t n;

	if (fd >= 0) {
		n = read(fd, out, BACKUP_ID_LEN + 1);
		close(fd);
		if (n == BACKUP_ID_LEN + 1 && out[BACKUP_ID_LEN] == '\n') {
			out[BACKUP_ID_LEN] = '\0';
			if (strspn(out, "0123456789abcdef") == BACKUP_ID_LEN)
				return 0;
		}
		return fail("%s/%s: not a backup id (remove it to make a "
		    "new one)", data_dir, BACKUP_ID_FILE);
	}
	if (errno != ENOENT || getrandom(raw, sizeof(raw), 0) !=
	    (ssize_t)sizeof(raw))
		return fail("%s/%s: %s", data_dir, BACKUP_ID_FILE,
		    strerror(errno));
	memcpy(pad, raw, sizeof(raw));
	backup_hex(pad, hex);
	memcpy(out, hex, BACKUP_ID_LEN);
	out[BACKUP_ID_LEN] = '\n';
	fd = openat(data_fd, BACKUP_ID_FILE, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, out, BACKUP_ID_LEN + 1) != BACKUP_ID_LEN + 1 ||
	    fsync(fd) < 0 || close(fd) < 0 || fsync(data_fd) < 0)
		return fail("%s/%s: cannot write: %s", data_dir,
		    BACKUP_ID_FILE, strerror(errno));
	out[BACKUP_ID_LEN] = '\0';
	return 0;
}

/* Whether the directory dirfd has nothing in it. */
static bool
is_dir_empty(int dirfd)
{
	int fd = dup(dirfd);
	struct dirent *de;
	bool is_empty = true;
	DIR *dp;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	rewinddir(dp);
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			is_empty = false;
			break;
		}
	}
	closedir(dp);
	return is_empty;
}

/* Refuses a DIR inside the data directory (a backup there would be
 * backed up, and restored, with the data) or holding it. */
static int
dir_place_check(const char *dir, const char *data_dir)
{
	char *data_real = realpath(data_dir, NULL), *dir_real, *parent;
	const char *base = strrchr(dir, '/');
	size_t dl;
	int rc = 0;

	if (data_real == NULL)
		return cli_fail("data_dir %s: %s", data_dir, strerror(errno));
	dir_real = realpath(dir, NULL);
	if (dir_real == NULL) {
		/* Not there yet: its parent decides. */
		parent = base == NULL ? xstrdup(".") : base == dir ?
		    xstrdup("/") : xstrndup(dir, (size_t)(base - dir));
		char *pr = realpath(parent, NULL);

		free(parent);
		if (pr == NULL) {
			free(data_real);
			return cli_fail("%s: %s", dir, strerror(errno));
		}
		dir_real = xasprintf("%s/%s", strcmp(pr, "/") == 0 ? "" : pr,
		    base == NULL ? dir : base + 1);
		free(pr);
	}
	dl = strlen(data_real);
	if ((strncmp(dir_real, data_real, dl) == 0 &&
	    (dir_real[dl] == '\0' || dir_real[dl] == '/')) ||
	    (strncmp(data_real, dir_real, strlen(dir_real)) == 0 &&
	    (data_real[strlen(dir_real)] == '/' || strcmp(dir_real, "/") ==
	    0)))
		rc = cli_fail("%s: the backup directory must be outside the "
		    "data directory %s (and not hold it)", dir, data_dir);
	free(dir_real);
	free(data_real);
	return rc;
}

/* Opens (making it 0700 when missing) the backup directory, before the
 * command becomes the server's user: as root it is given to that user,
 * and the descriptor reaches it even under a directory only root may
 * enter (/root). */
static int
dir_open(struct backup *b, const struct config *cfg)
{
	bool is_made = false;
	struct stat sb;

	if (mkdir(b->dir, 0700) == 0)
		is_made = true;
	else if (errno != EEXIST)
		return cli_fail("%s: cannot create: %s", b->dir,
		    strerror(errno));
	b->dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (b->dirfd < 0)
		return cli_fail("%s: %s", b->dir, errno == ELOOP ||
		    errno == ENOTDIR ? "not a directory (or a symbolic link)" :
		    strerror(errno));
	if (fstat(b->dirfd, &sb) < 0)
		return cli_fail("%s: %s", b->dir, strerror(errno));
	if (!is_made && !is_dir_empty(b->dirfd)) {
		struct stat mb;
		bool is_backup =
		    (fstatat(b->dirfd, BACKUP_MANIFEST, &mb,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(mb.st_mode)) ||
		    (fstatat(b->dirfd, BACKUP_MANIFEST ".prev", &mb,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(mb.st_mode));

		/* Checked before its owner or mode is touched: a directory
		 * that is neither new, empty nor a backup stays as it is. */
		if (!b->is_incremental)
			return cli_fail("%s: not empty; a new backup goes into "
			    "an empty or new directory (--incremental updates "
			    "a backup)", b->dir);
		if (!is_backup)
			return cli_fail("%s: not empty and no MANIFEST: not a "
			    "backup (an incremental backup updates a complete "
			    "one; a new backup goes into an empty or new "
			    "directory); left unchanged", b->dir);
	}
	if (geteuid() == 0 && cfg->user != NULL && sb.st_uid == 0) {
		const struct passwd *pw = getpwnam(cfg->user);

		if (pw != NULL && fchown(b->dirfd, pw->pw_uid,
		    pw->pw_gid) < 0)
			return cli_fail("%s: cannot give it to %s: %s",
			    b->dir, cfg->user, strerror(errno));
	}
	if (fchmod(b->dirfd, 0700) < 0)
		return cli_fail("%s: %s", b->dir, strerror(errno));
	return 0;
}

/* Incremental: the previous MANIFEST (or the one an interrupted run set
 * aside), which must come from this data directory. Renames MANIFEST
 * aside so that until this run ends DIR is not taken for a complete
 * backup. */
static int
old_manifest_read(struct backup *b, const char *source)
{
	const char *name = BACKUP_MANIFEST;
	struct stat sb;

	if (fstatat(b->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		name = BACKUP_MANIFEST ".prev";
		if (fstatat(b->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (is_dir_empty(b->dirfd)) {
				b->is_incremental = false;
				return 0;	/* the first run */
			}
			return fail("%s: no MANIFEST: not a backup (an "
			    "incremental backup updates a complete one)",
			    b->dir);
		}
	}
	if (backup_manifest_read(b->dirfd, b->dir, name, &b->old) < 0)
		return -1;
	if (strcmp(b->old.source, source) != 0)
		return fail("%s: made from another data directory (source "
		    "%s, this one is %s); start a new backup directory",
		    b->dir, b->old.source, source);
	if (strcmp(name, BACKUP_MANIFEST) == 0 &&
	    (renameat(b->dirfd, BACKUP_MANIFEST, b->dirfd,
	    BACKUP_MANIFEST ".prev") < 0 || fsync(b->dirfd) < 0))
		return fail("%s/%s: %s", b->dir, BACKUP_MANIFEST,
		    strerror(errno));
	return 0;
}

static int
backup_run(struct backup *b, const struct config *cfg,
    const char *config_path)
{
	char source[BACKUP_ID_LEN + 1], err[1024];
	const struct store_snapshot_blob *blobs;
	size_t nblobs;
	int data_fd = -1, rc;
	struct stat sb;

	if (dir_place_check(b->dir, cfg->data_dir) != 0 ||
	    dir_open(b, cfg) != 0)
		return CLI_EXIT_FAIL;
	rc = cli_user_become(config_path, cfg->user, cfg->data_dir);
	if (rc != 0)
		return rc;
	data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (data_fd < 0 || fstatat(data_fd, STORE_DB_NAME, &sb,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		rc = cli_fail("data_dir %s: no store to back up: %s",
		    cfg->data_dir, strerror(errno));
		goto out;
	}
	rc = CLI_EXIT_FAIL;
	if (source_id(data_fd, cfg->data_dir, source) < 0)
		goto out;
	if (b->is_incremental && old_manifest_read(b, source) < 0)
		goto out;
	b->st = store_open(cfg->data_dir, err, sizeof(err));
	if (b->st == NULL) {
		cli_fail("%s", err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	if (store_snapshot_new(b->st, on_db_progress, b, &b->snap, err,
	    sizeof(err)) < 0) {
		cli_fail("cannot take a snapshot of the store: %s", err);
		goto out;
	}
	if (file_put(b, store_snapshot_db_fd(b->snap), STORE_DB_NAME) < 0)
		goto out;
	blobs = store_snapshot_blobs(b->snap, &nblobs);
	b->blobs = nblobs;
	for (size_t i = 0; i < nblobs; i++) {
		if (blob_put(b, &blobs[i]) < 0)
			goto out;
		progress_show(b, false, "blobs %zu/%zu, %.1f MB", i + 1,
		    nblobs, (double)b->bytes / 1e6);
	}
	progress_show(b, true, "blobs %zu/%zu, %.1f MB", nblobs, nblobs,
	    (double)b->bytes / 1e6);
	/* What a restore on a new machine needs beside the store. */
	{
		int in = openat(data_fd, "auth.secret", O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);

		if (in < 0 && errno != ENOENT) {
			cli_fail("%s/auth.secret: %s", cfg->data_dir,
			    file_error(errno));
			goto out;
		}
		if (in >= 0) {
			int prc = file_put(b, in, "auth.secret");

			close(in);
			if (prc < 0)
				goto out;
		}
	}
	if (dir_put(b, data_fd, cfg->data_dir, "dkim") < 0 ||
	    dir_put(b, data_fd, cfg->data_dir, "tls") < 0)
		goto out;
	backup_manifest_sort(&b->m);
	if (b->is_incremental) {
		stale_remove(b, b->dirfd, "blobs", 0);
		stale_remove(b, b->dirfd, "dkim", 0);
		stale_remove(b, b->dirfd, "tls", 0);
	}
	/* Every file and directory entry written above is on disk before
	 * the MANIFEST names them: one syncfs(2) of the backup's file
	 * system, as the store's writer does for a batch (DESIGN.md). */
	if (syncfs(b->dirfd) < 0) {
		cli_fail("%s: cannot sync: %s", b->dir, strerror(errno));
		goto out;
	}
	if (manifest_write(b, store_snapshot_schema(b->snap), source) < 0)
		goto out;
	if (unlinkat(b->dirfd, BACKUP_MANIFEST ".prev", 0) == 0)
		fsync(b->dirfd);
	if (b->is_json)
		printf("{\"files\": %zu, \"blobs\": %zu, \"blobs_copied\": %zu, "
		    "\"blobs_kept\": %zu, \"blobs_removed\": %zu, \"bytes\": %"
		    PRIu64 ", \"seconds\": %.3f, \"schema\": %" PRId64 "}\n",
		    b->m.n, b->blobs, b->blobs_copied, b->blobs_kept,
		    b->blobs_removed, b->bytes, seconds_since(&b->started),
		    store_snapshot_schema(b->snap));
	else
		printf("backup %s: %zu files, %zu blobs (%zu copied, %zu kept, "
		    "%zu removed), %" PRIu64 " bytes written in %.1f s\n",
		    b->dir, b->m.n, b->blobs, b->blobs_copied, b->blobs_kept,
		    b->blobs_removed, b->bytes, seconds_since(&b->started));
	rc = CLI_EXIT_OK;
out:
	if (b->is_tty && rc != CLI_EXIT_OK)
		fputc('\n', stderr);
	store_snapshot_free(&b->snap);
	store_close(&b->st);
	if (data_fd >= 0)
		close(data_fd);
	return rc;
}

int
cli_backup(int argc, char **argv)
{
	struct backup b = { .dirfd = -1 };
	const char *config_path, *dir = NULL, *env = getenv("POSTERN_CONFIG");
	bool is_verify = false;
	struct config *cfg;
	char err[1024];
	int rc;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	config_path = env != NULL && *env != '\0' ? env : CLI_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--incremental") == 0)
			b.is_incremental = true;
		else if (strcmp(a, "--link") == 0)
			b.is_link = true;
		else if (strcmp(a, "--json") == 0)
			b.is_json = true;
		else if ((strcmp(a, "-c") == 0 ||
		    strcmp(a, "--config") == 0) && i + 1 < argc)
			config_path = argv[++i];
		else if (a[0] == '-' && a[1] != '\0')
			break;
		else if (i == 1 && strcmp(a, "verify") == 0)
			is_verify = true;
		else if (dir == NULL)
			dir = a;
		else {
			dir = NULL;
			break;
		}
		if (i == argc - 1)
			goto parsed;
	}
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
parsed:
	if (dir == NULL || (is_verify && (b.is_incremental || b.is_link))) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	if (is_verify)
		return verify_run(dir, b.is_json);
	cfg = config_load(config_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CLI_EXIT_USAGE;
	}
	log_configure(LOG_LEVEL_WARN, false);
	b.dir = dir;
	b.is_tty = isatty(STDERR_FILENO) && !b.is_json;
	for (size_t i = 0; i < 256; i++)
		b.xx_fd[i] = -1;
	rc = backup_run(&b, cfg, config_path);
	for (size_t i = 0; i < 256; i++) {
		if (b.xx_fd[i] >= 0)
			close(b.xx_fd[i]);
	}
	if (b.dirfd >= 0)
		close(b.dirfd);
	backup_manifest_deinit(&b.old);
	backup_manifest_deinit(&b.m);
	config_free(&cfg);
	return rc;
}
