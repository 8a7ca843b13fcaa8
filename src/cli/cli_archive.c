/*
 * cli_archive: `postern import` and `postern export` (issue #23): an
 * account's mail from and to Maildir++ (as Dovecot writes it) and mbox
 * files, flags, keywords and internal dates kept. The formats are
 * src/archive's; this file does the files and the store.
 *
 * Import streams each message into a store delivery (never a whole file
 * or message in memory), with CRLF line ends as SMTP stores them, and
 * keeps up to IMPORT_WINDOW deliveries in flight so that the store's
 * writer commits many in one batch. A message the target mailbox already
 * holds (the same bytes, archive_dedupe) is skipped, so an
 * import can run again after a failure. A message over [limits]
 * message_size is reported and skipped; the account's quota, a full
 * mailbox or a full disk stop the import.
 *
 * Export writes only new files (O_EXCL|O_NOFOLLOW) below a directory it
 * creates, never follows a link, and reports success only after a
 * syncfs(2) of the target file system.
 */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "archive/archive.h"
#include "lib/config.h"
#include "lib/util.h"
#include "store/store.h"

static const char import_usage[] =
    "postern import ADDRESS (--maildir DIR | --mbox PATH) [--folder NAME]"
    " [--mboxo] [--json] [-c FILE]\n"
    "  --mbox PATH: an mbox file (into --folder NAME, default INBOX) or a"
    " directory of them, one folder each\n"
    "  --maildir DIR: a Maildir++ (folders .A.B become A/B, under --folder"
    " NAME when given)\n"
    "  --mboxo: unquote only \">From \" lines (default: mboxrd)";
static const char export_usage[] =
    "postern export ADDRESS (--maildir DIR | --mbox PATH) [--folder NAME]"
    " [--json] [-c FILE]\n"
    "  DIR and PATH must not exist; --mbox PATH is a directory with one mbox"
    " per folder, or one file with --folder NAME";

/* Deliveries submitted and not yet durable. */
#define IMPORT_WINDOW 64
#define CHUNK (1u << 16)
/* Files of one Maildir folder or mbox directory taken at most. */
#define DIR_ENTRIES_MAX 10000000
/* Folders of one import at most. */
#define FOLDERS_MAX 100000

struct archive_opts {
	const char *maildir;
	const char *mbox;
	const char *folder;
	bool is_mboxo;
};

/* Removes our own options from argv (the shared parser must not see
 * them). Returns 0, or the exit status after printing why. */
static int
opts_take(int *argc, char **argv, struct archive_opts *o, const char *usage)
{
	int out = 1;

	memset(o, 0, sizeof(*o));
	for (int i = 1; i < *argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--maildir") == 0)
			slot = &o->maildir;
		else if (strcmp(argv[i], "--mbox") == 0)
			slot = &o->mbox;
		else if (strcmp(argv[i], "--folder") == 0)
			slot = &o->folder;
		if (slot != NULL) {
			if (i + 1 >= *argc || *slot != NULL) {
				fprintf(stderr, "usage: %s\n", usage);
				return CLI_EXIT_USAGE;
			}
			*slot = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--mboxo") == 0) {
			o->is_mboxo = true;
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	if ((o->maildir == NULL) == (o->mbox == NULL)) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* A file name as it can be printed: odd bytes as \xNN. */
static char *
name_printable(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(4 * n + 1), *p = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < ' ' || c == 127 || c == '\\')
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return out;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- Progress --------------------------------------------------------- */

struct progress {
	bool is_on;
	double last;
	const char *verb;
};

static void
progress_show(struct progress *p, uint64_t messages, uint64_t bytes,
    bool is_final)
{
	double t;

	if (!p->is_on)
		return;
	t = now_seconds();
	if (!is_final && t - p->last < 0.5)
		return;
	p->last = t;
	fprintf(stderr, "\r%s %" PRIu64 " messages, %.1f MB", p->verb,
	    messages, (double)bytes / 1e6);
	if (is_final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ---- Import ----------------------------------------------------------- */

struct import {
	struct store *st;
	int64_t account;
	uint64_t limit;		/* [limits] message_size */
	enum archive_mbox_kind kind;
	struct event_base *base;
	size_t inflight;
	struct progress progress;

	/* The folder being imported. */
	char *mailbox;
	struct archive_dedupe *dedupe;

	/* The message being read. */
	const char *file;	/* printable source name */
	int64_t date;		/* mbox: the From line's */
	uint64_t line, offset;	/* mbox: where the message starts */
	struct store_delivery *d;
	struct archive_eol eol;
	struct archive_key_builder *kb;
	uint64_t size;
	bool is_too_big, is_write_failed;
	enum store_err write_err;
	char *buf;		/* 2 * CHUNK + 2: converted bytes */

	uint64_t folders, imported, duplicates, failed, bytes;
	bool is_stopped;	/* quota, disk: nothing more goes in */
	bool is_bad_input;	/* a source could not be read */
};

/* Where a message comes from, for reports. */
static char *
import_where(const struct import *im)
{
	if (im->line > 0)
		return xasprintf("%s:%" PRIu64 " (offset %" PRIu64 ")",
		    im->file, im->line, im->offset);
	return xstrdup(im->file);
}

struct pending {
	struct import *im;
	char *where;
	uint64_t size;
};

static void
import_result(struct import *im, const char *where, uint64_t size,
    enum store_err err)
{
	if (err == STORE_OK) {
		im->imported++;
		im->bytes += size;
		progress_show(&im->progress, im->imported, im->bytes, false);
		return;
	}
	im->failed++;
	switch (err) {
	case STORE_OVER_QUOTA:
		if (!im->is_stopped)
			cli_fail("%s: the account is over its quota: import "
			    "stopped (raise it with `postern user set "
			    "ADDRESS quota=...` and run the import again: "
			    "messages already imported are skipped)", where);
		im->is_stopped = true;
		break;
	case STORE_NOT_ALLOWED:
		if (!im->is_stopped)
			cli_fail("%s: the mailbox %s cannot take more "
			    "messages: import stopped", where, im->mailbox);
		im->is_stopped = true;
		break;
	case STORE_NO_SPACE:
	case STORE_TEMP:
		if (!im->is_stopped)
			cli_fail("%s: %s: import stopped", where,
			    store_err_text(err));
		im->is_stopped = true;
		break;
	default:
		cli_fail("%s: cannot be stored (%s): skipped", where,
		    store_err_text(err));
		break;
	}
}

static void
import_done(void *arg, const struct store_delivery_result *results, size_t n)
{
	struct pending *p = arg;

	import_result(p->im, p->where, p->size,
	    n < 1 ? STORE_TEMP : results[0].err);
	p->im->inflight--;
	free(p->where);
	free(p);
}

/* Waits until at most max deliveries are in flight. */
static void
import_drain(struct import *im, size_t max)
{
	while (im->inflight > max)
		event_base_loop(im->base, EVLOOP_ONCE);
}

static void
msg_begin(struct import *im)
{
	enum store_err err;

	im->size = 0;
	im->is_too_big = false;
	im->is_write_failed = false;
	archive_eol_init(&im->eol, false);
	im->kb = archive_key_builder_new();
	im->d = store_delivery_new(im->st, &err);
	if (im->d == NULL) {
		im->is_write_failed = true;
		im->write_err = err;
	}
}

static void
msg_put(struct import *im, const char *p, size_t n)
{
	enum store_err err;

	archive_key_builder_feed(im->kb, p, n);
	im->size += n;
	if (im->size > im->limit)
		im->is_too_big = true;
	if (im->is_too_big || im->is_write_failed)
		return;
	if (store_delivery_write(im->d, p, n, &err) < 0) {
		im->is_write_failed = true;
		im->write_err = err;
	}
}

static void
msg_write(struct import *im, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = n < CHUNK ? n : CHUNK;

		msg_put(im, im->buf, archive_eol_feed(&im->eol, p, k,
		    im->buf));
		p += k;
		n -= k;
	}
}

/* Ends the message: skipped as a duplicate or too big, or submitted. */
static void
msg_end(struct import *im, uint32_t flags, const char *keywords, int64_t date)
{
	struct archive_key key;
	struct pending *p;
	char *where;

	msg_put(im, im->buf, archive_eol_finish(&im->eol, im->buf));
	archive_key_builder_final(&im->kb, &key);
	where = import_where(im);
	if (im->is_stopped) {
		store_delivery_abort(&im->d);
		free(where);
		return;
	}
	if (im->size == 0) {
		cli_fail("%s: an empty message: skipped", where);
		im->failed++;
	} else if (im->is_too_big) {
		cli_fail("%s: larger than the size limit ([limits] "
		    "message_size = %" PRIu64 " bytes): skipped", where,
		    im->limit);
		im->failed++;
	} else if (archive_dedupe_take(im->dedupe, &key)) {
		im->duplicates++;
	} else if (im->is_write_failed) {
		import_result(im, where, im->size, im->write_err);
	} else {
		store_delivery_add(im->d, im->account, im->mailbox, flags,
		    keywords, date);
		p = xcalloc(1, sizeof(*p));
		p->im = im;
		p->where = where;
		p->size = im->size;
		im->inflight++;
		if (store_delivery_submit(im->d, im->base, import_done,
		    p) < 0) {
			im->inflight--;
			import_result(im, where, im->size, STORE_TEMP);
			free(where);
			free(p);
		}
		im->d = NULL;
		import_drain(im, IMPORT_WINDOW - 1);
		return;
	}
	store_delivery_abort(&im->d);
	free(where);
}

static void
msg_abort(struct import *im)
{
	struct archive_key key;

	if (im->kb != NULL)
		archive_key_builder_final(&im->kb, &key);
	store_delivery_abort(&im->d);
}

/* Makes name a mailbox of the account (a folder of the source that the
 * account lacks is created) and reads what it holds for the duplicate
 * check. Returns 0, or -1 after printing why. */
static int
folder_begin(struct import *im, const char *name, const char *source)
{
	struct store_mailbox mb;
	enum store_err err;

	import_drain(im, 0);
	free(im->mailbox);
	im->mailbox = xstrdup(name);
	archive_dedupe_free(&im->dedupe);
	if (store_mailbox_get(im->st, im->account, name, &mb, &err) < 0) {
		/* A folder the import makes is subscribed too: clients that
		 * show subscribed folders only (Thunderbird's default)
		 * would hide it. */
		if (err == STORE_NOT_FOUND &&
		    store_mailbox_create(im->st, im->account, name,
		    STORE_SPECIAL_NONE, &err) == 0 &&
		    store_mailbox_subscribe(im->st, im->account, name, true,
		    &err) == 0)
			err = STORE_OK;
		if (err != STORE_OK || store_mailbox_get(im->st, im->account,
		    name, &mb, &err) < 0) {
			cli_fail("%s: cannot make the mailbox '%s': %s%s",
			    source, name, store_err_text(err),
			    err == STORE_INVALID ? " (not a valid name)" : "");
			return -1;
		}
	}
	im->dedupe = archive_dedupe_new();
	if (archive_dedupe_load(im->dedupe, im->st, mb.id, &err) < 0) {
		store_mailbox_deinit(&mb);
		cli_fail("%s: cannot read the mailbox '%s': %s", source, name,
		    store_err_text(err));
		return -1;
	}
	store_mailbox_deinit(&mb);
	im->folders++;
	return 0;
}

/* -- mbox -- */

static int
mbox_begin(void *arg, const struct archive_mbox_from *from)
{
	struct import *im = arg;

	im->line = from->line;
	im->offset = from->offset;
	im->date = from->date;
	msg_begin(im);
	return 0;
}

static int
mbox_data(void *arg, const char *p, size_t n)
{
	msg_write(arg, p, n);
	return 0;
}

static int
mbox_end(void *arg, const struct archive_mbox_msg *msg)
{
	struct import *im = arg;

	if (msg->is_pseudo) {
		msg_abort(im);
		return 0;
	}
	msg_end(im, msg->flags, msg->keywords, im->date);
	return im->is_stopped ? -1 : 0;
}

static const struct archive_mbox_cb mbox_cb = {
	.begin = mbox_begin,
	.data = mbox_data,
	.end = mbox_end,
};

/* Imports one mbox file (fd, read from its start) into the current
 * folder. Returns 0, or -1 after printing why. */
static int
mbox_import_fd(struct import *im, int fd, const char *file)
{
	struct archive_mbox *m = archive_mbox_new(im->kind, &mbox_cb, im);
	char *in = xmalloc(CHUNK);
	enum parse_rc rc = PARSE_MORE;
	ssize_t got;

	im->file = file;
	while (rc == PARSE_MORE && (got = read(fd, in, CHUNK)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			cli_fail("%s: cannot read: %s", file, strerror(errno));
			im->is_bad_input = true;
			rc = PARSE_ERROR;
			break;
		}
		rc = archive_mbox_feed(m, in, (size_t)got);
	}
	if (rc == PARSE_MORE)
		rc = archive_mbox_finish(m);
	if (rc == PARSE_ERROR) {
		uint64_t line, off;
		const char *why = archive_mbox_error(m, &line, &off);

		msg_abort(im);
		if (!im->is_stopped && !im->is_bad_input) {
			cli_fail("%s:%" PRIu64 " (offset %" PRIu64 "): %s",
			    file, line, off, why);
			im->is_bad_input = true;
		}
	}
	free(in);
	archive_mbox_free(&m);
	im->line = 0;
	return rc == PARSE_ERROR ? -1 : 0;
}

/* Opens name below dirfd (AT_FDCWD: a path) without following a final
 * link; a regular file only. Returns the fd, or -1 with errno set
 * (EINVAL: not a regular file). */
static int
file_open(int dirfd, const char *name, struct stat *st_out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, st_out) < 0 || !S_ISREG(st_out->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dirfd that do not start with '.' (is_dot false) or that do
 * (is_dot true, "." and ".." left out), sorted. */
static char **
dir_names(int dirfd, bool is_dot, size_t *n_out)
{
	int fd = dup(dirfd);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	*n_out = 0;
	if (dp == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	rewinddir(dp);
	while ((de = readdir(dp)) != NULL && n < DIR_ENTRIES_MAX) {
		if ((de->d_name[0] == '.') != is_dot ||
		    strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	if (n > 0)
		qsort(names, n, sizeof(*names), str_cmp);
	*n_out = n;
	return names;
}

static void
names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The mailbox a source folder goes to: under --folder when given. */
static char *
target_name(const char *folder, const char *name)
{
	if (name == NULL)
		return xstrdup(folder != NULL ? folder : "INBOX");
	if (folder == NULL)
		return xstrdup(name);
	return xasprintf("%s/%s", folder, name);
}

static int
mbox_import(struct import *im, const struct archive_opts *o)
{
	struct stat st;
	char *shown = name_printable(o->mbox);
	int fd = open(o->mbox, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_fail("%s: cannot open: %s", shown, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(shown);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		char *target = target_name(o->folder, NULL);

		if (folder_begin(im, target, shown) < 0 ||
		    mbox_import_fd(im, fd, shown) < 0)
			rc = -1;
		free(target);
	} else if (S_ISDIR(st.st_mode)) {
		size_t n;
		char **names = dir_names(fd, false, &n);

		/* One mbox per folder, named as export names them: the
		 * Maildir++ folder name without its leading dot, INBOX
		 * for INBOX. */
		for (size_t i = 0; i < n && rc == 0 && !im->is_stopped; i++) {
			char *dot = xasprintf(".%s", names[i]);
			char *name = strcasecmp(names[i], "INBOX") == 0 ?
			    NULL : archive_folder_decode(dot);
			char *file = xasprintf("%s/%s", shown, names[i]);
			char *pfile = name_printable(file);
			struct stat fst;
			int ffd = file_open(fd, names[i], &fst);

			if (ffd < 0) {
				fprintf(stderr, "postern: %s: %s: skipped\n",
				    pfile, errno == ELOOP ? "a link (links are "
				    "not followed)" : errno == EINVAL ?
				    "not a regular file" : strerror(errno));
			} else if (name == NULL &&
			    strcasecmp(names[i], "INBOX") != 0) {
				fprintf(stderr, "postern: %s: not a folder "
				    "name: skipped\n", pfile);
			} else {
				char *target = target_name(o->folder, name);

				if (folder_begin(im, target, pfile) < 0 ||
				    mbox_import_fd(im, ffd, pfile) < 0)
					rc = -1;
				free(target);
			}
			if (ffd >= 0)
				close(ffd);
			free(pfile);
			free(file);
			free(name);
			free(dot);
		}
		names_free(names, n);
	} else {
		cli_fail("%s: neither an mbox file nor a directory", shown);
		rc = -1;
	}
	close(fd);
	free(shown);
	return rc;
}

/* -- Maildir -- */

struct mfile {
	char *name;
	int sub;		/* 0: cur, 1: new */
	int64_t time;
};

static int
mfile_cmp(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The keyword list of a file's letters (and P), or NULL. */
static char *
maildir_keywords(const struct archive_maildir_keywords *k,
    const struct archive_maildir_info *info)
{
	char *list = info->is_forwarded ? xstrdup("$Forwarded") : NULL;

	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS; i++) {
		char *next;

		if (!(info->keywords & (1u << i)) || k->names[i] == NULL)
			continue;
		next = list == NULL ? xstrdup(k->names[i]) :
		    xasprintf("%s %s", list, k->names[i]);
		free(list);
		list = next;
	}
	return list;
}

static void
keywords_read(int dirfd, const char *shown,
    struct archive_maildir_keywords *k)
{
	struct stat st;
	int fd = file_open(dirfd, "dovecot-keywords", &st);
	char *text;
	size_t bad, bad_line, len = 0;
	ssize_t got;

	memset(k, 0, sizeof(*k));
	if (fd < 0)
		return;
	if (st.st_size > ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX) {
		fprintf(stderr, "postern: %s/dovecot-keywords: larger than "
		    "%u bytes: keywords ignored\n", shown,
		    ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX);
		close(fd);
		return;
	}
	text = xmalloc(ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX);
	while (len < ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX &&
	    (got = read(fd, text + len,
	    ARCHIVE_MAILDIR_KEYWORDS_FILE_MAX - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	bad = archive_maildir_keywords_parse(k, text, len, &bad_line);
	if (bad > 0)
		fprintf(stderr, "postern: %s/dovecot-keywords:%zu: not "
		    "\"N keyword\" (%zu such line%s skipped)\n", shown,
		    bad_line, bad, bad == 1 ? "" : "s");
	free(text);
}

static int
maildir_file(struct import *im, int dirfd, const struct mfile *f,
    const char *dirshown, const struct archive_maildir_keywords *k)
{
	struct archive_maildir_info info;
	struct stat st;
	char *shown, *keywords;
	char *in;
	int fd;
	int64_t date;
	ssize_t got;

	shown = name_printable(f->name);
	im->file = NULL;
	fd = file_open(dirfd, f->name, &st);
	if (fd < 0) {
		fprintf(stderr, "postern: %s/%s: %s: skipped\n", dirshown,
		    shown, errno == ELOOP ? "a link (links are not "
		    "followed)" : errno == EINVAL ? "not a regular file" :
		    strerror(errno));
		free(shown);
		im->failed++;
		return 0;
	}
	char *where = xasprintf("%s/%s", dirshown, shown);

	im->file = where;
	archive_maildir_name_parse(f->name, &info);
	/* Dovecot takes the received date from the file's mtime. */
	date = st.st_mtime > 0 ? (int64_t)st.st_mtime : info.time > 0 ?
	    info.time : 0;
	msg_begin(im);
	in = xmalloc(CHUNK);
	while ((got = read(fd, in, CHUNK)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		msg_write(im, in, (size_t)got);
	}
	free(in);
	close(fd);
	if (got < 0) {
		cli_fail("%s: cannot read: %s: skipped", where,
		    strerror(errno));
		msg_abort(im);
		im->failed++;
	} else {
		keywords = maildir_keywords(k, &info);
		msg_end(im, info.flags, keywords, date);
		free(keywords);
	}
	im->file = NULL;
	free(where);
	free(shown);
	return 0;
}

/* Imports the messages of one Maildir (cur/ and new/ of dirfd). */
static int
maildir_folder(struct import *im, int dirfd, const char *shown,
    const char *target)
{
	static const char *const subs[] = { "cur", "new" };
	struct archive_maildir_keywords k;
	struct mfile *files = NULL;
	size_t nfiles = 0, cap = 0;
	int subfd[2] = { -1, -1 };

	if (folder_begin(im, target, shown) < 0)
		return -1;
	keywords_read(dirfd, shown, &k);
	for (int s = 0; s < 2; s++) {
		char **names;
		size_t n;

		subfd[s] = openat(dirfd, subs[s], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (subfd[s] < 0) {
			if (errno != ENOENT) {
				fprintf(stderr, "postern: %s/%s: %s: "
				    "skipped\n", shown, subs[s],
				    errno == ELOOP || errno == ENOTDIR ?
				    "not a directory (links are not "
				    "followed)" : strerror(errno));
				im->failed++;
			}
			continue;
		}
		names = dir_names(subfd[s], false, &n);
		for (size_t i = 0; i < n; i++) {
			struct archive_maildir_info info;

			if (nfiles == cap) {
				cap = cap ? cap * 2 : 64;
				files = xrealloc(files, cap * sizeof(*files));
			}
			archive_maildir_name_parse(names[i], &info);
			files[nfiles++] = (struct mfile){ names[i], s,
			    info.time };
		}
		free(names);	/* the strings now belong to files */
	}
	/* In the order they came, as the names say. */
	if (nfiles > 0)
		qsort(files, nfiles, sizeof(*files), mfile_cmp);
	for (size_t i = 0; i < nfiles && !im->is_stopped; i++) {
		char *dirshown = xasprintf("%s/%s", shown, subs[files[i].sub]);

		maildir_file(im, subfd[files[i].sub], &files[i], dirshown, &k);
		free(dirshown);
	}
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].name);
	free(files);
	for (int s = 0; s < 2; s++) {
		if (subfd[s] >= 0)
			close(subfd[s]);
	}
	archive_maildir_keywords_deinit(&k);
	return 0;
}

static bool
has_subdir(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode);
}

static int
maildir_import(struct import *im, const struct archive_opts *o)
{
	char *shown = name_printable(o->maildir);
	int fd = open(o->maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	char **names;
	size_t n;

	if (fd < 0) {
		cli_fail("%s: cannot open the Maildir: %s", shown,
		    strerror(errno));
		free(shown);
		return -1;
	}
	if (!has_subdir(fd, "cur") && !has_subdir(fd, "new")) {
		cli_fail("%s: not a Maildir (no cur/ or new/ directory)",
		    shown);
		close(fd);
		free(shown);
		return -1;
	}
	{
		char *target = target_name(o->folder, NULL);

		rc = maildir_folder(im, fd, shown, target);
		free(target);
	}
	names = dir_names(fd, true, &n);
	for (size_t i = 0; i < n && rc == 0 && !im->is_stopped &&
	    i < FOLDERS_MAX; i++) {
		char *pname = name_printable(names[i]);
		char *sub = xasprintf("%s/%s", shown, pname);
		char *name = archive_folder_decode(names[i]);
		int sfd;

		/* Not a folder: Dovecot's and others' own files. */
		if (!has_subdir(fd, names[i])) {
			struct stat lst;

			if (fstatat(fd, names[i], &lst,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
				fprintf(stderr, "postern: %s: a link (links "
				    "are not followed): skipped\n", sub);
				im->failed++;
			}
			free(name);
			free(sub);
			free(pname);
			continue;
		}
		sfd = openat(fd, names[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (name == NULL) {
			fprintf(stderr, "postern: %s: not a Maildir++ folder "
			    "name: skipped\n", sub);
		} else if (sfd < 0) {
			fprintf(stderr, "postern: %s: %s: skipped\n", sub,
			    strerror(errno));
		} else {
			char *target = target_name(o->folder,
			    strcmp(name, "INBOX") == 0 ? NULL : name);

			rc = maildir_folder(im, sfd, sub, target);
			free(target);
		}
		if (sfd >= 0)
			close(sfd);
		free(name);
		free(sub);
		free(pname);
	}
	names_free(names, n);
	close(fd);
	free(shown);
	return rc;
}

static void
import_summary(const struct import *im, bool is_json)
{
	if (is_json) {
		json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}",
		    "folders", (json_int_t)im->folders,
		    "imported", (json_int_t)im->imported,
		    "duplicates", (json_int_t)im->duplicates,
		    "failed", (json_int_t)im->failed,
		    "bytes", (json_int_t)im->bytes,
		    "complete", !im->is_stopped && !im->is_bad_input);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		return;
	}
	printf("imported %" PRIu64 " message%s (%" PRIu64 " bytes) into %"
	    PRIu64 " folder%s; %" PRIu64 " duplicate%s skipped; %" PRIu64
	    " failed%s\n", im->imported, im->imported == 1 ? "" : "s",
	    im->bytes, im->folders, im->folders == 1 ? "" : "s",
	    im->duplicates, im->duplicates == 1 ? "" : "s", im->failed,
	    im->is_stopped || im->is_bad_input ? " (stopped early)" : "");
}

int
cli_import(int argc, char **argv)
{
	struct archive_opts o;
	struct cli_admin ad;
	struct store_account a;
	struct import im;
	enum store_err err;
	int rc;

	if (cli_help_asked(argc, argv, import_usage))
		return CLI_EXIT_OK;
	rc = opts_take(&argc, argv, &o, import_usage);
	if (rc != 0)
		return rc;
	rc = cli_admin_open(&ad, argc, argv, import_usage);
	if (rc != 0)
		return rc;
	if (ad.argc != 1) {
		cli_admin_close(&ad);
		fprintf(stderr, "usage: %s\n", import_usage);
		return CLI_EXIT_USAGE;
	}
	if (store_account_get(ad.store, ad.argv[0], &a, &err) < 0) {
		cli_admin_close(&ad);
		return cli_fail("%s: %s", ad.argv[0], store_err_text(err));
	}
	memset(&im, 0, sizeof(im));
	im.st = ad.store;
	im.account = a.id;
	im.limit = ad.cfg->message_size;
	im.kind = o.is_mboxo ? ARCHIVE_MBOXO : ARCHIVE_MBOXRD;
	evthread_use_pthreads();
	im.base = event_base_new();
	if (im.base == NULL)
		panic("cli: event_base_new failed");
	im.buf = xmalloc(2 * CHUNK + 2);
	im.progress.is_on = !ad.is_json && isatty(STDERR_FILENO);
	im.progress.verb = "imported";
	store_account_deinit(&a);
	rc = o.maildir != NULL ? maildir_import(&im, &o) :
	    mbox_import(&im, &o);
	import_drain(&im, 0);
	progress_show(&im.progress, im.imported, im.bytes, true);
	import_summary(&im, ad.is_json);
	archive_dedupe_free(&im.dedupe);
	free(im.mailbox);
	free(im.buf);
	event_base_free(im.base);
	cli_admin_close(&ad);
	return rc < 0 || im.failed > 0 || im.is_stopped || im.is_bad_input ?
	    CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- Export ----------------------------------------------------------- */

struct export {
	struct store *st;
	struct progress progress;
	char host[64];
	uint64_t folders, messages, bytes, failed, keywords_dropped;
	char *buf;		/* CHUNK + 2 * CHUNK + 2 */
	const char *target;	/* printable, for reports */
};

/* Writes n bytes to fd. Returns 0, or -1 with errno set. */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A new file below dirfd: never one that exists, never through a link. */
static int
file_create(int dirfd, const char *name)
{
	return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
}

/* Whether name can be used as one entry of a directory we write: one
 * path component, not "." or "..". The encoders never make anything
 * else; this is the last line of defence (issue #23: exports stay inside
 * their folder). */
static bool
is_component_safe(const char *name)
{
	return *name != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Makes the directory an export writes into: new, or existing and empty.
 * Returns an fd, or -1 after printing why. */
static int
target_dir_make(const char *path, const char *shown)
{
	int fd;
	size_t n;
	char **names;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		cli_fail("%s: cannot create: %s", shown, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		cli_fail("%s: cannot open as a directory: %s", shown,
		    strerror(errno));
		return -1;
	}
	names = dir_names(fd, false, &n);
	names_free(names, n);
	if (n == 0) {
		names = dir_names(fd, true, &n);
		names_free(names, n);
	}
	if (n > 0) {
		close(fd);
		cli_fail("%s: exists and is not empty (an export writes only "
		    "new files)", shown);
		return -1;
	}
	return fd;
}

static int
subdir_make(int dirfd, const char *name)
{
	if (!is_component_safe(name) || (mkdirat(dirfd, name, 0700) < 0 &&
	    errno != EEXIST))
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

/* Return-Path of the message for the From line, from the start of its
 * header, or NULL. */
static char *
return_path(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t len = lf != NULL ? (size_t)(lf - (p + i)) : n - i;
		const char *line = p + i;

		if (len == 0 || (len == 1 && line[0] == '\r') || lf == NULL)
			return NULL;
		if (len > 12 && strncasecmp(line, "Return-Path:", 12) == 0) {
			const char *lt = memchr(line, '<', len);
			const char *gt = lt != NULL ? memchr(lt, '>',
			    len - (size_t)(lt - line)) : NULL;

			if (gt != NULL && gt > lt + 1)
				return xstrndup(lt + 1, (size_t)(gt - lt - 1));
			return NULL;
		}
		i += len + 1;
	}
	return NULL;
}

/* The message's keywords as Maildir letters of k (and P). */
static void
msg_letters(struct export *ex, struct archive_maildir_keywords *k,
    const char *keywords, struct archive_maildir_info *info)
{
	const char *p = keywords;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " ");
		int letter;

		if (n == 10 && strncasecmp(p, "$Forwarded", 10) == 0) {
			info->is_forwarded = true;
		} else if (n > 0) {
			letter = archive_maildir_keywords_letter(k, p, n);
			if (letter < 0)
				ex->keywords_dropped++;
			else
				info->keywords |= 1u << letter;
		}
		p += n;
		p += strspn(p, " ");
	}
}

/* Writes one message into tmp/ of the folder, then gives it its name in
 * cur/ (renameat2 RENAME_NOREPLACE: never over another file). Returns 0,
 * or -1 after printing why. */
static int
maildir_msg(struct export *ex, const struct store_mailbox *mb,
    const struct store_msg *msg, int tmpfd, int curfd,
    struct archive_maildir_keywords *k)
{
	struct archive_maildir_info info = { .flags = msg->flags };
	struct archive_eol eol;
	char tmpname[64], name[ARCHIVE_MAILDIR_NAME_MAX], unique[48];
	struct timespec times[2];
	char *out = ex->buf + CHUNK;
	uint64_t size = 0;
	enum store_err err;
	int in, fd, rc = -1;
	ssize_t got;

	in = store_blob_open(ex->st, msg->blob, &err);
	if (in < 0) {
		if (err == STORE_NOT_FOUND)
			return 0;	/* expunged meanwhile */
		return cli_fail("%s: UID %" PRIu32 ": cannot read: %s",
		    mb->name, msg->uid, store_err_text(err)), -1;
	}
	snprintf(tmpname, sizeof(tmpname), "%" PRIu32 ".%ld.tmp", msg->uid,
	    (long)getpid());
	fd = file_create(tmpfd, tmpname);
	if (fd < 0) {
		cli_fail("%s/tmp/%s: cannot create: %s", ex->target, tmpname,
		    strerror(errno));
		close(in);
		return -1;
	}
	archive_eol_init(&eol, true);
	while ((got = read(in, ex->buf, CHUNK)) != 0) {
		size_t n;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto out;
		n = archive_eol_feed(&eol, ex->buf, (size_t)got, out);
		if (write_all(fd, out, n) < 0)
			goto out;
		size += n;
	}
	got = (ssize_t)archive_eol_finish(&eol, out);
	if (write_all(fd, out, (size_t)got) < 0)
		goto out;
	size += (uint64_t)got;
	/* The internal date is the file's mtime, as Dovecot reads it. */
	times[0].tv_sec = times[1].tv_sec = (time_t)msg->internal_date;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	if (futimens(fd, times) < 0)
		goto out;
	msg_letters(ex, k, msg->keywords, &info);
	snprintf(unique, sizeof(unique), "U%" PRIu32 "V%" PRIu32, msg->uid,
	    mb->uidvalidity);
	if (archive_maildir_name_format(name, sizeof(name),
	    msg->internal_date, unique, ex->host, size, msg->size,
	    &info) == 0 || !is_component_safe(name)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	if (renameat2(tmpfd, tmpname, curfd, name, RENAME_NOREPLACE) < 0)
		goto out;
	ex->messages++;
	ex->bytes += msg->size;
	progress_show(&ex->progress, ex->messages, ex->bytes, false);
	rc = 0;
out:
	if (rc < 0) {
		cli_fail("%s: UID %" PRIu32 ": cannot write: %s", mb->name,
		    msg->uid, strerror(errno));
		unlinkat(tmpfd, tmpname, 0);
	}
	close(fd);
	close(in);
	return rc;
}

static int
keywords_write(int dirfd, const struct archive_maildir_keywords *k)
{
	int fd = -1, rc = 0;

	for (int i = 0; i < ARCHIVE_MAILDIR_KEYWORDS && rc == 0; i++) {
		char *line;

		if (k->names[i] == NULL)
			continue;
		if (fd < 0 && (fd = file_create(dirfd, "dovecot-keywords")) < 0)
			return -1;
		line = xasprintf("%d %s\n", i, k->names[i]);
		rc = write_all(fd, line, strlen(line));
		free(line);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
maildir_export_one(struct export *ex, int rootfd,
    const struct store_mailbox *mb)
{
	struct archive_maildir_keywords k;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	enum store_err err;
	char *enc = archive_folder_encode(mb->name);
	int dirfd = -1, curfd = -1, tmpfd = -1, newfd = -1, rc = -1;

	memset(&k, 0, sizeof(k));
	if (enc == NULL) {
		cli_fail("mailbox '%s': its name cannot be a Maildir folder "
		    "(an empty level, or not UTF-8): skipped; rename it "
		    "first", mb->name);
		return -1;
	}
	dirfd = *enc == '\0' ? dup(rootfd) : subdir_make(rootfd, enc);
	if (dirfd < 0 || (curfd = subdir_make(dirfd, "cur")) < 0 ||
	    (newfd = subdir_make(dirfd, "new")) < 0 ||
	    (tmpfd = subdir_make(dirfd, "tmp")) < 0) {
		cli_fail("%s/%s: cannot create the folder: %s", ex->target,
		    enc, strerror(errno));
		goto out;
	}
	if (store_msg_list(ex->st, mb->id, 1, UINT32_MAX, &msgs, &n,
	    &err) < 0) {
		cli_fail("mailbox '%s': cannot read: %s", mb->name,
		    store_err_text(err));
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (maildir_msg(ex, mb, &msgs[i], tmpfd, curfd, &k) < 0) {
			ex->failed++;
			rc = -1;
		}
	}
	if (keywords_write(dirfd, &k) < 0) {
		cli_fail("%s/%s/dovecot-keywords: cannot write: %s",
		    ex->target, enc, strerror(errno));
		rc = -1;
	}
	ex->folders++;
out:
	store_msg_list_free(&msgs, n);
	archive_maildir_keywords_deinit(&k);
	if (dirfd >= 0)
		close(dirfd);
	if (curfd >= 0)
		close(curfd);
	if (newfd >= 0)
		close(newfd);
	if (tmpfd >= 0)
		close(tmpfd);
	free(enc);
	return rc;
}

static int
fd_write(void *arg, const char *p, size_t n)
{
	return write_all(*(int *)arg, p, n);
}

/* Writes the messages of mb as one mbox file into fd. */
static int
mbox_export_one(struct export *ex, int fd, const struct store_mailbox *mb,
    const char *shown)
{
	struct store_msg *msgs = NULL;
	size_t n = 0;
	enum store_err err;
	int rc = 0;

	if (store_msg_list(ex->st, mb->id, 1, UINT32_MAX, &msgs, &n,
	    &err) < 0) {
		cli_fail("mailbox '%s': cannot read: %s", mb->name,
		    store_err_text(err));
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct archive_mbox_out *o;
		char from[ARCHIVE_MBOX_FROM_MAX], *sender;
		int in = store_blob_open(ex->st, msgs[i].blob, &err);
		ssize_t got;
		bool is_first = true;
		size_t len;

		if (in < 0) {
			if (err == STORE_NOT_FOUND)
				continue;
			cli_fail("%s: UID %" PRIu32 ": cannot read: %s",
			    mb->name, msgs[i].uid, store_err_text(err));
			ex->failed++;
			rc = -1;
			break;
		}
		o = archive_mbox_out_new(msgs[i].flags, msgs[i].keywords,
		    fd_write, &fd);
		while ((got = read(in, ex->buf, CHUNK)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				break;
			if (is_first) {
				is_first = false;
				sender = return_path(ex->buf, (size_t)got);
				len = archive_mbox_from_format(from,
				    sizeof(from), sender,
				    msgs[i].internal_date);
				free(sender);
				if (write_all(fd, from, len) < 0) {
					got = -1;
					break;
				}
			}
			if (archive_mbox_out_feed(o, ex->buf,
			    (size_t)got) < 0) {
				got = -1;
				break;
			}
		}
		if (got == 0 && is_first) {
			/* An empty body still gets its From line. */
			len = archive_mbox_from_format(from, sizeof(from),
			    NULL, msgs[i].internal_date);
			if (write_all(fd, from, len) < 0)
				got = -1;
		}
		if (got == 0 && archive_mbox_out_finish(o) < 0)
			got = -1;
		archive_mbox_out_free(&o);
		close(in);
		if (got < 0) {
			cli_fail("%s: cannot write: %s", shown,
			    strerror(errno));
			ex->failed++;
			rc = -1;
			break;
		}
		ex->messages++;
		ex->bytes += msgs[i].size;
		progress_show(&ex->progress, ex->messages, ex->bytes, false);
	}
	store_msg_list_free(&msgs, n);
	ex->folders++;
	return rc;
}

/* The file name of mb in an mbox directory: its Maildir++ name without
 * the leading dot, INBOX for INBOX. */
static char *
mbox_file_name(const char *mailbox)
{
	char *enc = archive_folder_encode(mailbox), *name;

	if (enc == NULL)
		return NULL;
	name = xstrdup(*enc == '\0' ? "INBOX" : enc + 1);
	free(enc);
	return name;
}

static void
export_summary(const struct export *ex, bool is_json)
{
	if (is_json) {
		json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I}",
		    "folders", (json_int_t)ex->folders,
		    "messages", (json_int_t)ex->messages,
		    "bytes", (json_int_t)ex->bytes,
		    "failed", (json_int_t)ex->failed,
		    "keywords_dropped", (json_int_t)ex->keywords_dropped);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		return;
	}
	printf("exported %" PRIu64 " message%s (%" PRIu64 " bytes) from %"
	    PRIu64 " folder%s; %" PRIu64 " failed\n", ex->messages,
	    ex->messages == 1 ? "" : "s", ex->bytes, ex->folders,
	    ex->folders == 1 ? "" : "s", ex->failed);
	if (ex->keywords_dropped > 0)
		printf("%" PRIu64 " keyword%s dropped: a Maildir folder holds "
		    "at most 26 keywords\n", ex->keywords_dropped,
		    ex->keywords_dropped == 1 ? "" : "s");
}

/* Makes the directory entry of the new file path durable. */
static int
dir_sync(const char *path)
{
	char *copy = xstrdup(path), *slash = strrchr(copy, '/');
	int fd, rc;

	if (slash == copy)
		slash[1] = '\0';	/* "/file": the root */
	else if (slash != NULL)
		*slash = '\0';
	fd = open(slash != NULL ? copy : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
export_run(struct export *ex, const struct archive_opts *o,
    struct store_mailbox *list, size_t n, const char *shown)
{
	const char *path = o->maildir != NULL ? o->maildir : o->mbox;
	int rootfd, rc = 0;

	if (o->mbox != NULL && o->folder != NULL) {
		/* One folder, one file. */
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);

		if (fd < 0)
			return cli_fail("%s: cannot create: %s%s", shown,
			    strerror(errno), errno == EEXIST ? " (an export "
			    "writes only new files)" : ""), -1;
		rc = mbox_export_one(ex, fd, &list[0], shown);
		if (fsync(fd) < 0 || dir_sync(path) < 0)
			rc = (cli_fail("%s: fsync: %s", shown,
			    strerror(errno)), -1);
		close(fd);
		return rc;
	}
	rootfd = target_dir_make(path, shown);
	if (rootfd < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (o->maildir != NULL) {
			if (maildir_export_one(ex, rootfd, &list[i]) < 0)
				rc = -1;
			continue;
		}
		char *name = mbox_file_name(list[i].name);
		int fd = -1;

		if (name == NULL || !is_component_safe(name)) {
			cli_fail("mailbox '%s': its name cannot be a file name "
			    "(an empty level, or not UTF-8): skipped; rename "
			    "it first", list[i].name);
			rc = -1;
		} else if ((fd = file_create(rootfd, name)) < 0) {
			cli_fail("%s/%s: cannot create: %s", shown, name,
			    strerror(errno));
			rc = -1;
		} else {
			char *file = xasprintf("%s/%s", shown, name);

			if (mbox_export_one(ex, fd, &list[i], file) < 0)
				rc = -1;
			free(file);
		}
		if (fd >= 0)
			close(fd);
		free(name);
	}
	/* One sync of the file system makes every file and directory entry
	 * durable, as the store does for a batch (DESIGN.md, Storage). */
	if (syncfs(rootfd) < 0 || fsync(rootfd) < 0)
		rc = (cli_fail("%s: sync: %s", shown, strerror(errno)), -1);
	close(rootfd);
	return rc;
}

int
cli_export(int argc, char **argv)
{
	struct archive_opts o;
	struct cli_admin ad;
	struct store_account a;
	struct store_mailbox *list = NULL;
	struct export ex;
	size_t n = 0;
	enum store_err err;
	char *shown;
	int rc;

	if (cli_help_asked(argc, argv, export_usage))
		return CLI_EXIT_OK;
	rc = opts_take(&argc, argv, &o, export_usage);
	if (rc != 0)
		return rc;
	if (o.is_mboxo) {
		fprintf(stderr, "usage: %s\n", export_usage);
		return CLI_EXIT_USAGE;
	}
	rc = cli_admin_open(&ad, argc, argv, export_usage);
	if (rc != 0)
		return rc;
	if (ad.argc != 1) {
		cli_admin_close(&ad);
		fprintf(stderr, "usage: %s\n", export_usage);
		return CLI_EXIT_USAGE;
	}
	if (store_account_get(ad.store, ad.argv[0], &a, &err) < 0) {
		cli_admin_close(&ad);
		return cli_fail("%s: %s", ad.argv[0], store_err_text(err));
	}
	if (store_mailbox_list(ad.store, a.id, &list, &n, &err) < 0) {
		store_account_deinit(&a);
		cli_admin_close(&ad);
		return cli_fail("%s: %s", ad.argv[0], store_err_text(err));
	}
	if (o.folder != NULL) {
		size_t keep = n;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(list[i].name, o.folder) == 0 ||
			    (strcasecmp(o.folder, "INBOX") == 0 &&
			    strcmp(list[i].name, "INBOX") == 0))
				keep = i;
		}
		if (keep == n) {
			store_mailbox_list_free(&list, n);
			store_account_deinit(&a);
			cli_admin_close(&ad);
			return cli_fail("%s: no mailbox '%s'", ad.argv[0],
			    o.folder);
		}
		struct store_mailbox tmp = list[0];

		list[0] = list[keep];
		list[keep] = tmp;
	}
	memset(&ex, 0, sizeof(ex));
	ex.st = ad.store;
	ex.buf = xmalloc(3 * CHUNK + 2);
	ex.progress.is_on = !ad.is_json && isatty(STDERR_FILENO);
	ex.progress.verb = "exported";
	if (gethostname(ex.host, sizeof(ex.host)) < 0)
		strcpy(ex.host, "localhost");
	ex.host[sizeof(ex.host) - 1] = '\0';
	/* The Maildir spec: a host name holds no '/' or ':' (nor ','). */
	for (char *p = ex.host; *p != '\0'; p++) {
		if (*p == '/' || *p == ':' || *p == ',' || *p <= ' ' ||
		    *p == 127)
			*p = '_';
	}
	shown = name_printable(o.maildir != NULL ? o.maildir : o.mbox);
	ex.target = shown;
	rc = export_run(&ex, &o, list, o.folder != NULL ? 1 : n, shown);
	progress_show(&ex.progress, ex.messages, ex.bytes, true);
	export_summary(&ex, ad.is_json);
	free(shown);
	free(ex.buf);
	store_mailbox_list_free(&list, n);
	store_account_deinit(&a);
	cli_admin_close(&ad);
	return rc < 0 || ex.failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
