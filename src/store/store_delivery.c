/*
 * store_delivery: one message on its way in. The body goes to a temporary
 * file in DATA/tmp as it arrives (store_delivery_write); at submit the
 * message is parsed once (mime_parse, on the caller's thread, so that the
 * writer thread only writes) and handed to the writer, which renames the
 * file into place, makes it durable and commits the metadata of every
 * recipient in one go. A struct store_delivery belongs to its caller until
 * submit or commit, then to the writer.
 */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mime/mime.h"

/* Temporary names carry the pid so that a second process opening the same
 * store (the CLI while the server runs) leaves the first one's files
 * alone: "d.<pid>.XXXXXX". */
#define TMP_PREFIX "d."

void
store_delivery_tmp_clean(const char *data_dir)
{
	char *dir = xasprintf("%s/tmp", data_dir);
	struct dirent *de;
	DIR *dp;

	if ((dp = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		char *end;
		long pid;

		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		pid = strtol(de->d_name + strlen(TMP_PREFIX), &end, 10);
		/* Only the files of processes that are gone (a crash) or of
		 * an earlier life of this pid. */
		if (*end != '.' || (pid != getpid() && pid > 0 &&
		    (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
			continue;
		if (unlinkat(dirfd(dp), de->d_name, 0) == 0)
			log_info(NULL, "store.tmp_clean file=%s", de->d_name);
	}
	closedir(dp);
	free(dir);
}

bool
is_store_tmpfile_usable(const char *data_dir)
{
	char *tmp = xasprintf("%s/tmp", data_dir);
	char *name = xasprintf("%s/probe.%ld", tmp, (long)getpid());
	char proc[64];
	int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), rc = -1;

	if (fd >= 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		rc = linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
		close(fd);
		if (rc == 0)
			unlink(name);
	}
	free(name);
	free(tmp);
	return rc == 0;
}

int
store_delivery_link(struct store_delivery *d, int dirfd, const char *name)
{
	char proc[64];

	if (d->path != NULL)
		return renameat(AT_FDCWD, d->path, dirfd, name);
	/* linkat(AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH; the /proc
	 * link does not. A name left by a crash is in the way: it is an
	 * orphan (store_sqlite_write.c), so it goes. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->fd);
	if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST || unlinkat(dirfd, name, 0) < 0)
		return -1;
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

int
store_delivery_unlink(struct store_delivery *d)
{
	int rc = d->path != NULL ? rename(d->placed, d->path) :
	    unlink(d->placed);

	if (rc == 0) {
		free(d->placed);
		d->placed = NULL;
	}
	return rc;
}

/* The body file's name for logs. */
static const char *
delivery_name(const struct store_delivery *d)
{
	return d->path != NULL ? d->path : "(O_TMPFILE)";
}

struct store_delivery *
store_delivery_new(struct store *st, enum store_err *err_out)
{
	struct store_delivery *d;
	char *path = NULL;
	int fd;

	/* An O_TMPFILE body has no name until the writer links it into
	 * place: no directory entry to fight over while it arrives, and
	 * nothing to clean up after a crash. */
	if (st->is_tmpfile) {
		path = xasprintf("%s/tmp", st->data_dir);
		fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	} else {
		path = xasprintf("%s/tmp/" TMP_PREFIX "%ld.XXXXXX",
		    st->data_dir, (long)getpid());
		fd = mkostemp(path, O_CLOEXEC);
	}
	if (fd < 0) {
		int errnum = errno;

		log_error(NULL, "store.delivery_new path=%s error=\"%s\"", path,
		    strerror(errnum));
		free(path);
		*err_out = store_err_errno(errnum);
		return NULL;
	}
	if (st->is_tmpfile) {
		free(path);
		path = NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->st = st;
	d->fd = fd;
	d->path = path;
	d->parsed.structure.date = -1;
	*err_out = STORE_OK;
	return d;
}

int
store_delivery_write(struct store_delivery *d, const void *data, size_t len,
    enum store_err *err_out)
{
	const char *p = data;

	if (d->is_failed) {
		*err_out = d->is_no_space ? STORE_NO_SPACE : STORE_TEMP;
		return -1;
	}
	if (d->is_parsed) {
		/* store_delivery_end() said the body was complete. */
		*err_out = STORE_INVALID;
		return -1;
	}
	if (d->size + len <= STORE_INLINE_MAX) {
		if (d->size + len > d->copy_cap) {
			d->copy_cap = d->copy_cap * 2 > d->size + len ?
			    d->copy_cap * 2 : d->size + len;
			if (d->copy_cap > STORE_INLINE_MAX)
				d->copy_cap = STORE_INLINE_MAX;
			d->copy = xrealloc(d->copy, d->copy_cap);
		}
		memcpy(d->copy + d->size, data, len);
	} else {
		free(d->copy);
		d->copy = NULL;
	}
	while (len > 0) {
		ssize_t n = write(d->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Disk full or I/O error: the delivery is lost, what
			 * is stored already is not touched. write(2) returns
			 * 0 only for an empty write; a short one is
			 * retried, and ENOSPC comes with the next call. */
			int errnum = n < 0 ? errno : EIO;

			log_error(NULL, "store.delivery_write path=%s "
			    "error=\"%s\"", delivery_name(d),
			    strerror(errnum));
			d->is_failed = true;
			d->is_no_space = store_err_errno(errnum) ==
			    STORE_NO_SPACE;
			*err_out = store_err_errno(errnum);
			return -1;
		}
		p += n;
		len -= (size_t)n;
		d->size += (uint64_t)n;
	}
	*err_out = STORE_OK;
	return 0;
}

/* Bytes store_delivery_write_fd() copies at a time. */
#define WRITE_FD_CHUNK (64 * 1024)

int
store_delivery_write_fd(struct store_delivery *d, int fd, uint64_t start,
    uint64_t len, enum store_err *err_out)
{
	char *buf = xmalloc(WRITE_FD_CHUNK);
	uint64_t off = 0;
	int rc = 0;

	while (off < len) {
		size_t want = len - off < WRITE_FD_CHUNK ?
		    (size_t)(len - off) : WRITE_FD_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)(start + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error(NULL, "store.delivery_write_fd error=\"%s\"",
			    n < 0 ? strerror(errno) : "file shorter than said");
			*err_out = n < 0 ? store_err_errno(errno) :
			    STORE_INVALID;
			rc = -1;
			break;
		}
		if (store_delivery_write(d, buf, (size_t)n, err_out) < 0) {
			rc = -1;
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	if (rc == 0)
		*err_out = STORE_OK;
	return rc;
}

int
store_spool_open(struct store *st, enum store_err *err_out)
{
	char *path;
	int fd;

	if (st->is_tmpfile) {
		path = xasprintf("%s/tmp", st->data_dir);
		fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	} else {
		/* Named for store_delivery_tmp_clean(), and unlinked at once:
		 * only a crash between the two leaves the name behind. */
		path = xasprintf("%s/tmp/" TMP_PREFIX "%ld.XXXXXX",
		    st->data_dir, (long)getpid());
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0) {
		int errnum = errno;

		log_error(NULL, "store.spool_open path=%s error=\"%s\"", path,
		    strerror(errnum));
		free(path);
		*err_out = store_err_errno(errnum);
		return -1;
	}
	free(path);
	*err_out = STORE_OK;
	return fd;
}

void
store_delivery_add(struct store_delivery *d, int64_t account,
    const char *mailbox, uint32_t flags, const char *keywords,
    int64_t internal_date)
{
	struct store_rcpt *r;

	if (d->nrcpts == d->rcpts_cap) {
		d->rcpts_cap = d->rcpts_cap ? d->rcpts_cap * 2 : 4;
		d->rcpts = xrealloc(d->rcpts, d->rcpts_cap * sizeof(*r));
	}
	r = &d->rcpts[d->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->account = account;
	r->flags = flags & (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED |
	    STORE_FLAG_FLAGGED | STORE_FLAG_DELETED | STORE_FLAG_DRAFT);
	r->internal_date = internal_date;
	if (mailbox != NULL && store_name_mailbox(mailbox, &r->mailbox) < 0)
		r->is_invalid = true;
	if (keywords != NULL && store_keywords_norm(keywords,
	    &r->keywords) < 0)
		r->is_invalid = true;
}

/* Whether s can go into a queue entry as it is: no line ends, no NUL. */
static bool
is_queue_text(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

void
store_delivery_queue(struct store_delivery *d, const char *sender,
    const char *rcpt, const char *dsn_envelope, const char *dsn_rcpt)
{
	struct store_queued *q;

	/* Our own callers pass what their parsers accepted; anything else
	 * fails the delivery (its results say so) rather than queue a
	 * broken envelope. */
	if (sender == NULL || rcpt == NULL || *rcpt == '\0' ||
	    !is_queue_text(sender) || !is_queue_text(rcpt) ||
	    !is_queue_text(dsn_envelope) || !is_queue_text(dsn_rcpt)) {
		log_error(NULL, "store.delivery_queue error=\"invalid "
		    "envelope\"");
		d->is_failed = true;
	}
	d->queued = xrealloc(d->queued, (d->nqueued + 1) * sizeof(*q));
	q = &d->queued[d->nqueued++];
	q->sender = xstrdup(sender != NULL ? sender : "");
	q->rcpt = xstrdup(rcpt != NULL ? rcpt : "");
	q->dsn_envelope = dsn_envelope != NULL ? xstrdup(dsn_envelope) : NULL;
	q->dsn_rcpt = dsn_rcpt != NULL ? xstrdup(dsn_rcpt) : NULL;
	q->is_report = false;
}

void
store_delivery_set_atomic(struct store_delivery *d)
{
	d->is_atomic = true;
}

void
store_delivery_set_junk(struct store_delivery *d, bool is_junk)
{
	d->is_junk = is_junk;
}

void
store_delivery_set_authenticated(struct store_delivery *d,
    bool is_authenticated)
{
	d->is_authenticated = is_authenticated;
}

/* Whether the RFC 3461 NOTIFY of dsn_rcpt lists SUCCESS (§4.1: NEVER, or
 * a comma-separated list of SUCCESS, FAILURE, DELAY; no NOTIFY means
 * FAILURE,DELAY). */
static bool
has_notify_success(const char *dsn_rcpt)
{
	const char *p = dsn_rcpt;

	while (p != NULL && *p != '\0') {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n > 7 && strncasecmp(p, "NOTIFY=", 7) == 0) {
			for (size_t i = 7; i + 7 <= n; i++) {
				if ((i == 7 || p[i - 1] == ',') &&
				    strncasecmp(p + i, "SUCCESS", 7) == 0 &&
				    (i + 7 == n || p[i + 7] == ','))
					return true;
			}
			return false;
		}
		p += n;
	}
	return false;
}

void
store_delivery_notify(struct store_delivery *d, const char *sender,
    const char *rcpt, const char *dsn_envelope, const char *dsn_rcpt)
{
	if (sender == NULL || *sender == '\0' || !has_notify_success(dsn_rcpt))
		return;
	store_delivery_queue(d, sender, rcpt, dsn_envelope, dsn_rcpt);
	d->queued[d->nqueued - 1].is_report = true;
}

void
store_delivery_chain(struct store_delivery *d, struct store_delivery *next)
{
	d->is_atomic = true;
	next->is_atomic = true;
	while (d->next != NULL)
		d = d->next;
	d->next = next;
}

void
store_delivery_replace(struct store_delivery *d, int64_t mailbox,
    uint32_t uid)
{
	d->replace_mailbox = mailbox;
	d->replace_uid = uid;
}

void
store_delivery_discard(struct store_delivery *d)
{
	if (d->next != NULL)
		store_delivery_discard(d->next);
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	if (!d->is_kept) {
		const char *name = d->placed != NULL ? d->placed : d->path;

		if (name != NULL && unlink(name) < 0 && errno != ENOENT)
			log_warn(NULL, "store.delivery_discard path=%s "
			    "error=\"%s\"", name, strerror(errno));
	}
	free(d->placed);
	d->placed = NULL;
	free(d->path);
	d->path = NULL;
}

void
store_delivery_free(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	store_delivery_free(&d->next);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d->placed);
	free(d->copy);
	for (size_t i = 0; i < d->nrcpts; i++) {
		free(d->rcpts[i].mailbox);
		free(d->rcpts[i].keywords);
	}
	free(d->rcpts);
	for (size_t i = 0; i < d->nqueued; i++) {
		free(d->queued[i].sender);
		free(d->queued[i].rcpt);
		free(d->queued[i].dsn_envelope);
		free(d->queued[i].dsn_rcpt);
	}
	free(d->queued);
	store_migrate_op_free(&d->migrate);
	store_parsed_deinit(&d->parsed);
	free(d);
}

void
store_delivery_abort(struct store_delivery **dp)
{
	if (*dp == NULL)
		return;
	store_delivery_discard(*dp);
	store_delivery_free(dp);
}

/* Parses the body (once, here on the caller's thread) and builds the
 * request. A delivery whose body could not be written fails every
 * recipient with STORE_NO_SPACE (disk full) or STORE_TEMP without
 * reaching the backend. */
static void delivery_parse(struct store_delivery *d);

static struct store_req *
delivery_req_new(struct store_delivery *head)
{
	struct store_req *req = xcalloc(1, sizeof(*req));
	bool is_failed = false, is_no_space = false;

	req->kind = STORE_REQ_DELIVERY;
	req->origin = store_origin_current();
	req->d = head;
	/* The queued recipients share the last result of their delivery;
	 * a chain has one result per recipient of each delivery. */
	for (struct store_delivery *d = head; d != NULL; d = d->next) {
		req->ndres += d->nrcpts + (d->nqueued > 0);
		delivery_parse(d);
		is_failed = is_failed || d->is_failed;
		is_no_space = is_no_space || d->is_no_space;
	}
	req->dres = xcalloc(req->ndres ? req->ndres : 1, sizeof(*req->dres));
	for (size_t i = 0; i < req->ndres; i++)
		req->dres[i].err = STORE_TEMP;
	if (is_failed || req->ndres == 0) {
		req->err = is_no_space ? STORE_NO_SPACE : STORE_TEMP;
		for (size_t i = 0; i < req->ndres; i++)
			req->dres[i].err = req->err;
	}
	return req;
}

/* Parses the body of d into d->parsed (d->is_failed when it cannot be
 * read). */
static void
delivery_parse(struct store_delivery *d)
{
	if (d->is_parsed)
		return;
	d->is_parsed = true;
	if (!d->is_failed && d->copy != NULL) {
		store_parsed_init(&d->parsed, d->copy, d->size);
		free(d->copy);
		d->copy = NULL;
	} else if (!d->is_failed && d->size > 0) {
		void *map = mmap(NULL, d->size, PROT_READ, MAP_SHARED, d->fd,
		    0);

		if (map == MAP_FAILED) {
			log_error(NULL, "store.delivery_map path=%s "
			    "error=\"%s\"", delivery_name(d), strerror(errno));
			d->is_failed = true;
		} else {
			store_parsed_init(&d->parsed, map, d->size);
			munmap(map, d->size);
		}
	} else if (!d->is_failed) {
		store_parsed_init(&d->parsed, "", 0);
	}
}

void
store_delivery_end(struct store_delivery *d)
{
	delivery_parse(d);
}

static void
delivery_req_free(struct store_req *req)
{
	if (req->d != NULL) {
		store_delivery_discard(req->d);
		store_delivery_free(&req->d);
	}
	free(req->dres);
	free(req->touched);
	store_req_events_clear(req);
	free(req);
}

int
store_delivery_submit(struct store_delivery *d, struct event_base *base,
    store_delivery_cb cb, void *arg)
{
	struct store_req *req = delivery_req_new(d);

	req->base = base;
	req->delivery_cb = cb;
	req->arg = arg;
	if (store_writer_submit(d->st, req) < 0) {
		delivery_req_free(req);
		return -1;
	}
	return 0;
}

int
store_delivery_commit(struct store_delivery *d,
    struct store_delivery_result **results_out, size_t *n_out)
{
	struct store_req *req = delivery_req_new(d);
	int rc = store_writer_run(d->st, req);

	*results_out = NULL;
	*n_out = 0;
	if (rc == 0) {
		*results_out = req->dres;
		*n_out = req->ndres;
		req->dres = NULL;
	}
	delivery_req_free(req);
	return rc;
}

/* ---- The parsed message ---------------------------------------------- */

void
store_parsed_deinit(struct store_parsed *p)
{
	store_structure_deinit(&p->structure);
	free(p->subject);
	free(p->from);
	free(p->to);
	free(p->cc);
	free(p->bcc);
	free(p->message_id);
	free(p->in_reply_to);
	free(p->references);
	free(p->headers_text);
	free(p->body_text);
	memset(p, 0, sizeof(*p));
	p->structure.date = -1;
}

static char *
take(char **s)
{
	char *t = *s;

	*s = NULL;
	return t;
}

/* Where the top-level header ends (its blank line included), for a
 * message mime_parse could not describe. */
static size_t
header_end(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (i + 1 < len && data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* Unfolds a header block in place (RFC 5322 §2.2.3: a line end followed
 * by white space goes), so that the index sees a folded value as one
 * string and a search for it finds it. */
static void
unfold(char *s)
{
	char *out = s;

	for (const char *p = s; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' ||
		    p[2] == '\t')) {
			p++;
			continue;
		}
		if (p[0] == '\n' && (p[1] == ' ' || p[1] == '\t'))
			continue;
		*out++ = *p;
	}
	*out = '\0';
}

/* mime's text starts with the decoded Subject, From, To, Cc and Bcc lines
 * of the message; those belong to the header for BODY searches, so the
 * body text skips the leading lines equal to one of them. */
static const char *
skip_header_lines(const char *text, const struct store_parsed *p)
{
	const char *fields[] = { p->subject, p->from, p->to, p->cc, p->bcc };
	bool used[ARRAY_LEN(fields)] = { false };
	bool is_skipped = true;

	while (is_skipped) {
		is_skipped = false;
		for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
			size_t n;

			if (used[i] || fields[i] == NULL)
				continue;
			n = strlen(fields[i]);
			if (strncmp(text, fields[i], n) == 0 &&
			    (text[n] == '\n' || text[n] == '\0')) {
				text += n + (text[n] == '\n');
				used[i] = is_skipped = true;
				break;
			}
		}
	}
	return text;
}

void
store_parsed_init(struct store_parsed *p_out, const char *data, size_t len)
{
	struct mime_info mi;
	struct store_structure *s = &p_out->structure;
	const char *fields[5];
	size_t hlen, flen = 0;
	char *raw;

	memset(p_out, 0, sizeof(*p_out));
	s->date = -1;
	if (mime_parse(data, len, &mi) < 0) {
		memset(&mi, 0, sizeof(mi));
		mi.date = -1;
	}
	s->envelope = take(&mi.envelope);
	s->bodystructure = take(&mi.bodystructure);
	s->body = take(&mi.body);
	s->preview = take(&mi.preview);
	s->date = mi.date >= 0 ? mi.date : -1;
	p_out->date_local = mi.date >= 0 ? mi.date_local : -1;
	if (mi.nparts > 0) {
		s->parts = xcalloc(mi.nparts, sizeof(*s->parts));
		s->nparts = mi.nparts;
		for (size_t i = 0; i < mi.nparts; i++) {
			s->parts[i].section = take(&mi.parts[i].section);
			if (s->parts[i].section == NULL)
				s->parts[i].section = xstrdup("");
			s->parts[i].header_off = mi.parts[i].header_off;
			s->parts[i].body_off = mi.parts[i].body_off;
			s->parts[i].end_off = mi.parts[i].end_off;
		}
	}
	p_out->subject = take(&mi.subject);
	p_out->from = take(&mi.from);
	p_out->to = take(&mi.to);
	p_out->cc = take(&mi.cc);
	p_out->bcc = take(&mi.bcc);
	p_out->message_id = take(&mi.message_id);
	p_out->in_reply_to = take(&mi.in_reply_to);
	p_out->references = take(&mi.references);

	/* TEXT searches the header as sent, unfolded (so that any field
	 * matches), and the decoded values (so that RFC 2047 words match as
	 * read). */
	hlen = s->nparts > 0 && s->parts[0].body_off <= len ?
	    s->parts[0].body_off : header_end(data, len);
	if (hlen > STORE_HEADER_TEXT_MAX)
		hlen = STORE_HEADER_TEXT_MAX;
	raw = store_utf8_clean(data, hlen);
	unfold(raw);
	fields[0] = p_out->subject;
	fields[1] = p_out->from;
	fields[2] = p_out->to;
	fields[3] = p_out->cc;
	fields[4] = p_out->bcc;
	for (size_t i = 0; i < ARRAY_LEN(fields); i++)
		flen += fields[i] != NULL ? strlen(fields[i]) + 1 : 0;
	p_out->headers_text = xmalloc(strlen(raw) + 1 + flen + 1);
	strcpy(p_out->headers_text, raw);
	strcat(p_out->headers_text, "\n");
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		if (fields[i] == NULL)
			continue;
		strcat(p_out->headers_text, fields[i]);
		strcat(p_out->headers_text, "\n");
	}
	free(raw);
	if (mi.text != NULL) {
		const char *body = skip_header_lines(mi.text, p_out);

		p_out->body_text = store_utf8_clean(body, strlen(body));
	} else {
		p_out->body_text = xstrdup("");
	}
	mime_info_deinit(&mi);
}
