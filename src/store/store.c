/*
 * store: the public face of store.h. Checks and normalizes arguments,
 * turns every change into a request for the writer thread
 * (store_writer.c) and every read into a call of the backend's function
 * table (store_backend.h). Deliveries live in store_delivery.c, routing
 * in store_route.c. Any thread may call in; see store.h.
 */
#include "store/store_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mime/mime.h"

/* A search tree deeper or larger than this is refused (STORE_INVALID):
 * the IMAP parser bounds nesting too, this keeps the store safe alone. */
#define COND_DEPTH_MAX 32
#define COND_NODES_MAX 10000

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

const char *
store_err_text(enum store_err err)
{
	switch (err) {
	case STORE_OK:
		return "ok";
	case STORE_NOT_FOUND:
		return "no such item";
	case STORE_EXISTS:
		return "already exists";
	case STORE_INVALID:
		return "invalid argument";
	case STORE_OVER_QUOTA:
		return "over quota";
	case STORE_NOT_ALLOWED:
		return "not allowed";
	case STORE_MODIFIED:
		return "modified since";
	case STORE_TEMP:
		return "temporary failure";
	case STORE_NO_SPACE:
		return "out of disk space";
	}
	return "unknown error";
}

enum store_err
store_err_errno(int errnum)
{
	/* EDQUOT is the file system's quota of the postern user, not an
	 * account's: to a client it is the server's disk that is full. */
	return errnum == ENOSPC || errnum == EDQUOT ? STORE_NO_SPACE :
	    STORE_TEMP;
}

const char *
store_special_name(enum store_special special)
{
	switch (special) {
	case STORE_SPECIAL_NONE:
		return NULL;
	case STORE_SPECIAL_SENT:
		return "\\Sent";
	case STORE_SPECIAL_DRAFTS:
		return "\\Drafts";
	case STORE_SPECIAL_TRASH:
		return "\\Trash";
	case STORE_SPECIAL_JUNK:
		return "\\Junk";
	case STORE_SPECIAL_ARCHIVE:
		return "\\Archive";
	case STORE_SPECIAL_ALL:
		return "\\All";
	case STORE_SPECIAL_FLAGGED:
		return "\\Flagged";
	}
	return NULL;
}

static void
mime_init_once(void)
{
	mime_init();
}

struct store *
store_open(const char *data_dir, char *err, size_t errlen)
{
	pthread_condattr_t attr;
	struct store *st;
	char *tmp;

	pthread_once(&mime_once, mime_init_once);
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", data_dir,
		    strerror(errno));
		return NULL;
	}
	tmp = xasprintf("%s/tmp", data_dir);
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		free(tmp);
		return NULL;
	}
	free(tmp);
	store_delivery_tmp_clean(data_dir);
	st = xcalloc(1, sizeof(*st));
	st->data_dir = xstrdup(data_dir);
	st->is_tmpfile = is_store_tmpfile_usable(data_dir);
	st->be = &store_sqlite_backend;
	st->batch_max = STORE_BATCH_MAX_DEFAULT;
	st->sync = STORE_SYNC_AUTO;
	pthread_mutex_init(&st->lock, NULL);
	/* The writer's gathering waits with timeouts on the monotonic
	 * clock (store_writer.c). */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&st->queue_cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&st->idle_cond, NULL);
	pthread_mutex_init(&st->watch_lock, NULL);
	pthread_mutex_init(&st->recent_lock, NULL);
	if (st->be->open(st, err, errlen) < 0)
		goto fail;
	if (store_writer_start(st, err, errlen) < 0) {
		st->be->close(st);
		goto fail;
	}
	log_info(NULL, "store.open dir=%s backend=%s", data_dir,
	    st->be->name);
	return st;
fail:
	pthread_mutex_destroy(&st->recent_lock);
	pthread_mutex_destroy(&st->watch_lock);
	pthread_cond_destroy(&st->idle_cond);
	pthread_cond_destroy(&st->queue_cond);
	pthread_mutex_destroy(&st->lock);
	free(st->data_dir);
	free(st);
	return NULL;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return;
	*stp = NULL;
	store_writer_stop(st);
	for (size_t i = 0; i < STORE_WATCH_BUCKETS; i++) {
		if (st->watches[i] != NULL ||
		    st->account_watches[i] != NULL)
			panic("store_close with watches still registered");
	}
	st->be->close(st);
	store_recent_deinit(st);
	pthread_mutex_destroy(&st->recent_lock);
	pthread_mutex_destroy(&st->watch_lock);
	pthread_cond_destroy(&st->idle_cond);
	pthread_cond_destroy(&st->queue_cond);
	pthread_mutex_destroy(&st->lock);
	free(st->data_dir);
	free(st);
}

void
store_tune(struct store *st, size_t batch_max, enum store_sync sync)
{
	pthread_mutex_lock(&st->lock);
	st->batch_max = batch_max == 0 ? STORE_BATCH_MAX_DEFAULT :
	    batch_max > STORE_BATCH_MAX_LIMIT ? STORE_BATCH_MAX_LIMIT :
	    batch_max;
	st->sync = sync;
	pthread_mutex_unlock(&st->lock);
}

int
store_index_wait(struct store *st, enum store_err *err_out)
{
	pthread_mutex_lock(&st->lock);
	/* Wait for a batch after our call to have run (so that everything
	 * committed before it is visible to the indexer), then for the
	 * indexer to find nothing left. */
	st->is_index_idle = false;
	st->is_index_paused = false;
	pthread_cond_signal(&st->queue_cond);
	while (!st->is_index_idle && !st->is_stopping)
		pthread_cond_wait(&st->idle_cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
	*err_out = STORE_OK;
	return 0;
}

void
store_index_pause(struct store *st, bool is_paused)
{
	pthread_mutex_lock(&st->lock);
	st->is_index_paused = is_paused;
	pthread_cond_signal(&st->queue_cond);
	pthread_mutex_unlock(&st->lock);
}

/* ---- Freeing what the store returns --------------------------------- */

void
store_account_deinit(struct store_account *a)
{
	free(a->address);
	free(a->display_name);
	if (a->password_hash != NULL) {
		secret_wipe(a->password_hash, strlen(a->password_hash));
		free(a->password_hash);
	}
	if (a->scram_sha256 != NULL) {
		secret_wipe(a->scram_sha256, strlen(a->scram_sha256));
		free(a->scram_sha256);
	}
	free(a->forward_to);
	memset(a, 0, sizeof(*a));
}

void
store_account_list_free(struct store_account **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_account_deinit(&(*list)[i]);
	free(*list);
	*list = NULL;
}

void
store_strings_free(char ***strings)
{
	if (*strings == NULL)
		return;
	for (char **s = *strings; *s != NULL; s++)
		free(*s);
	free(*strings);
	*strings = NULL;
}

void
store_mailbox_deinit(struct store_mailbox *mb)
{
	free(mb->name);
	memset(mb, 0, sizeof(*mb));
}

void
store_mailbox_list_free(struct store_mailbox **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_mailbox_deinit(&(*list)[i]);
	free(*list);
	*list = NULL;
}

void
store_msg_list_free(struct store_msg **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*list)[i].keywords);
	free(*list);
	*list = NULL;
}

void
store_structure_deinit(struct store_structure *s)
{
	free(s->envelope);
	free(s->bodystructure);
	free(s->body);
	free(s->preview);
	for (size_t i = 0; i < s->nparts; i++)
		free(s->parts[i].section);
	free(s->parts);
	memset(s, 0, sizeof(*s));
	s->date = -1;
}

void
store_change_result_deinit(struct store_change_result *r)
{
	free(r->src_uids);
	free(r->dst_uids);
	free(r->modified);
	memset(r, 0, sizeof(*r));
}

/* ---- Requests through the writer ------------------------------------ */

static _Thread_local uint64_t origin_current;

void
store_origin_set(uint64_t origin)
{
	origin_current = origin;
}

uint64_t
store_origin_current(void)
{
	return origin_current;
}

static void
req_init(struct store_req *req, enum store_req_kind kind)
{
	memset(req, 0, sizeof(*req));
	req->kind = kind;
	req->origin = origin_current;
}

/* Runs req on the writer and waits; frees what the request collected. */
static int
req_run(struct store *st, struct store_req *req, enum store_err *err_out)
{
	int rc = store_writer_run(st, req);

	if (rc == 0 && req->err != STORE_OK)
		rc = -1;
	*err_out = req->err;
	free(req->touched);
	req->touched = NULL;
	store_req_events_clear(req);
	return rc;
}

void
store_req_touch(struct store_req *req, int64_t mailbox)
{
	for (size_t i = 0; i < req->ntouched; i++) {
		if (req->touched[i] == mailbox)
			return;
	}
	if (req->ntouched == req->touched_cap) {
		req->touched_cap = req->touched_cap ? req->touched_cap * 2 : 4;
		req->touched = xrealloc(req->touched,
		    req->touched_cap * sizeof(*req->touched));
	}
	req->touched[req->ntouched++] = mailbox;
}

void
store_req_event(struct store_req *req, int64_t account, int64_t mailbox,
    unsigned kind, const char *name, const char *old_name)
{
	struct store_req_event *e;

	if (kind & STORE_EVENT_MESSAGE) {
		for (size_t i = 0; i < req->nevents; i++) {
			e = &req->events[i];
			if ((e->ev.kind & STORE_EVENT_MESSAGE) &&
			    e->ev.mailbox == mailbox) {
				e->ev.kind |= kind;
				return;
			}
		}
	}
	if (req->nevents == req->events_cap) {
		req->events_cap = req->events_cap ? req->events_cap * 2 : 4;
		req->events = xrealloc(req->events,
		    req->events_cap * sizeof(*req->events));
	}
	e = &req->events[req->nevents++];
	e->account = account;
	e->ev.kind = kind;
	e->ev.origin = req->origin;
	e->ev.mailbox = mailbox;
	e->ev.name = name != NULL ? xstrdup(name) : NULL;
	e->ev.old_name = old_name != NULL ? xstrdup(old_name) : NULL;
}

void
store_req_events_clear(struct store_req *req)
{
	for (size_t i = 0; i < req->nevents; i++) {
		free(req->events[i].ev.name);
		free(req->events[i].ev.old_name);
	}
	free(req->events);
	req->events = NULL;
	req->nevents = req->events_cap = 0;
}

static int
invalid(enum store_err *err_out)
{
	*err_out = STORE_INVALID;
	return -1;
}

/* ---- Directory ------------------------------------------------------- */

/* Runs a request that names one domain. */
static int
domain_req_run(struct store *st, enum store_req_kind kind, const char *domain,
    enum store_err *err_out)
{
	struct store_req req;
	char *norm;
	int rc;

	if (store_name_domain(domain, &norm) < 0)
		return invalid(err_out);
	req_init(&req, kind);
	req.s1 = norm;
	rc = req_run(st, &req, err_out);
	free(norm);
	return rc;
}

int
store_domain_add(struct store *st, const char *domain,
    enum store_err *err_out)
{
	return domain_req_run(st, STORE_REQ_DOMAIN_ADD, domain, err_out);
}

int
store_domain_del(struct store *st, const char *domain,
    enum store_err *err_out)
{
	return domain_req_run(st, STORE_REQ_DOMAIN_DEL, domain, err_out);
}

int
store_domain_list(struct store *st, char ***names_out,
    enum store_err *err_out)
{
	*names_out = NULL;
	return st->be->domain_list(st, names_out, err_out);
}

bool
is_store_domain_local(struct store *st, const char *domain)
{
	enum store_err err;
	char *norm, *catchall = NULL;
	int rc;

	if (store_name_domain(domain, &norm) < 0)
		return false;
	rc = st->be->domain_get(st, norm, &catchall, &err);
	free(norm);
	free(catchall);
	return rc == 0;
}

int
store_domain_catchall_set(struct store *st, const char *domain,
    const char *target, enum store_err *err_out)
{
	struct store_req req;
	char *norm, *target_norm = NULL;
	const char *target_domain;
	int rc;

	if (store_name_domain(domain, &norm) < 0)
		return invalid(err_out);
	if (target != NULL && store_name_address(target, &target_norm,
	    &target_domain) < 0) {
		free(norm);
		return invalid(err_out);
	}
	req_init(&req, STORE_REQ_CATCHALL_SET);
	req.s1 = norm;
	req.s2 = target_norm;
	rc = req_run(st, &req, err_out);
	free(norm);
	free(target_norm);
	return rc;
}

static bool
is_account_valid(const struct store_account *a)
{
	const enum store_switch sw[] = { a->imap, a->pop3, a->submission };

	for (size_t i = 0; i < ARRAY_LEN(sw); i++) {
		if (sw[i] != STORE_SWITCH_DEFAULT &&
		    sw[i] != STORE_SWITCH_OFF && sw[i] != STORE_SWITCH_ON)
			return false;
	}
	return true;
}

int
store_account_add(struct store *st, struct store_account *a,
    enum store_err *err_out)
{
	struct store_account copy;
	struct store_req req;
	const char *domain;
	char *norm, *forward = NULL;
	int rc;

	if (a->address == NULL || !is_account_valid(a) ||
	    store_name_address(a->address, &norm, &domain) < 0)
		return invalid(err_out);
	if (a->forward_to != NULL && store_name_address(a->forward_to,
	    &forward, &domain) < 0) {
		free(norm);
		return invalid(err_out);
	}
	copy = *a;
	copy.address = norm;
	copy.forward_to = forward;
	req_init(&req, STORE_REQ_ACCOUNT_ADD);
	req.account_in = &copy;
	rc = req_run(st, &req, err_out);
	if (rc == 0)
		a->id = req.id_out;
	free(norm);
	free(forward);
	return rc;
}

int
store_account_del(struct store *st, const char *address,
    enum store_err *err_out)
{
	struct store_req req;
	const char *domain;
	char *norm;
	int rc;

	if (store_name_address(address, &norm, &domain) < 0)
		return invalid(err_out);
	req_init(&req, STORE_REQ_ACCOUNT_DEL);
	req.s1 = norm;
	rc = req_run(st, &req, err_out);
	free(norm);
	return rc;
}

int
store_account_get(struct store *st, const char *address,
    struct store_account *a_out, enum store_err *err_out)
{
	const char *domain;
	char *norm;
	int rc;

	memset(a_out, 0, sizeof(*a_out));
	if (store_name_address(address, &norm, &domain) < 0)
		return invalid(err_out);
	rc = st->be->account_get(st, norm, 0, a_out, err_out);
	free(norm);
	return rc;
}

int
store_account_get_by_id(struct store *st, int64_t id,
    struct store_account *a_out, enum store_err *err_out)
{
	memset(a_out, 0, sizeof(*a_out));
	return st->be->account_get(st, NULL, id, a_out, err_out);
}

int
store_account_update(struct store *st, const struct store_account *a,
    enum store_err *err_out)
{
	struct store_account copy;
	struct store_req req;
	const char *domain;
	char *forward = NULL;
	int rc;

	if (!is_account_valid(a))
		return invalid(err_out);
	if (a->forward_to != NULL && store_name_address(a->forward_to,
	    &forward, &domain) < 0)
		return invalid(err_out);
	copy = *a;
	copy.forward_to = forward;
	req_init(&req, STORE_REQ_ACCOUNT_UPDATE);
	req.account_in = &copy;
	rc = req_run(st, &req, err_out);
	free(forward);
	return rc;
}

int
store_account_list(struct store *st, const char *domain,
    struct store_account **list_out, size_t *n_out,
    enum store_err *err_out)
{
	char *norm = NULL;
	int rc;

	*list_out = NULL;
	*n_out = 0;
	if (domain != NULL && store_name_domain(domain, &norm) < 0)
		return invalid(err_out);
	rc = st->be->account_list(st, norm, list_out, n_out, err_out);
	free(norm);
	return rc;
}

int
store_account_usage(struct store *st, int64_t account,
    uint64_t *bytes_out, uint64_t *messages_out, enum store_err *err_out)
{
	*bytes_out = 0;
	*messages_out = 0;
	return st->be->account_usage(st, account, bytes_out, messages_out,
	    err_out);
}

int
store_alias_add(struct store *st, const char *address, const char *target,
    enum store_err *err_out)
{
	struct store_req req;
	const char *domain;
	char *norm, *target_norm;
	int rc;

	if (store_name_address(address, &norm, &domain) < 0)
		return invalid(err_out);
	if (store_name_address(target, &target_norm, &domain) < 0) {
		free(norm);
		return invalid(err_out);
	}
	req_init(&req, STORE_REQ_ALIAS_ADD);
	req.s1 = norm;
	req.s2 = target_norm;
	rc = req_run(st, &req, err_out);
	free(norm);
	free(target_norm);
	return rc;
}

int
store_alias_del(struct store *st, const char *address, const char *target,
    enum store_err *err_out)
{
	struct store_req req;
	const char *domain;
	char *norm, *target_norm = NULL;
	int rc;

	if (store_name_address(address, &norm, &domain) < 0)
		return invalid(err_out);
	if (target != NULL && store_name_address(target, &target_norm,
	    &domain) < 0) {
		free(norm);
		return invalid(err_out);
	}
	req_init(&req, STORE_REQ_ALIAS_DEL);
	req.s1 = norm;
	req.s2 = target_norm;
	rc = req_run(st, &req, err_out);
	free(norm);
	free(target_norm);
	return rc;
}

int
store_alias_targets(struct store *st, const char *address,
    char ***targets_out, enum store_err *err_out)
{
	const char *domain;
	char *norm;
	int rc;

	*targets_out = NULL;
	if (store_name_address(address, &norm, &domain) < 0)
		return invalid(err_out);
	rc = st->be->alias_targets(st, norm, targets_out, err_out);
	free(norm);
	return rc;
}

int
store_alias_list(struct store *st, char ***pairs_out,
    enum store_err *err_out)
{
	*pairs_out = NULL;
	return st->be->alias_list(st, pairs_out, err_out);
}

/* ---- App passwords --------------------------------------------------- */

/* A name a user gives a device: printable UTF-8, no control characters,
 * at most 64 bytes. */
static bool
is_app_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || !is_store_utf8(name, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)name[i] < ' ' || name[i] == 127)
			return false;
	}
	return true;
}

int
store_app_password_add(struct store *st, int64_t account, const char *name,
    const char *hash, uint32_t protocols, enum store_err *err_out)
{
	struct store_req req;

	if (name == NULL || hash == NULL || *hash == '\0' ||
	    !is_app_name_valid(name) || (protocols & ~(uint32_t)(
	    STORE_APP_IMAP | STORE_APP_POP3 | STORE_APP_SUBMISSION)) != 0)
		return invalid(err_out);
	req_init(&req, STORE_REQ_APP_PASSWORD_ADD);
	req.account = account;
	req.s1 = name;
	req.s2 = hash;
	req.protocols = protocols;
	return req_run(st, &req, err_out);
}

int
store_app_password_list(struct store *st, int64_t account,
    struct store_app_password **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	return st->be->app_password_list(st, account, list_out, n_out,
	    err_out);
}

void
store_app_password_list_free(struct store_app_password **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct store_app_password *p = &(*list)[i];

		free(p->name);
		if (p->hash != NULL) {
			secret_wipe(p->hash, strlen(p->hash));
			free(p->hash);
		}
		free(p->last_peer);
	}
	free(*list);
	*list = NULL;
}

int
store_app_password_revoke(struct store *st, int64_t account,
    const char *name, enum store_err *err_out)
{
	struct store_req req;

	if (name == NULL)
		return invalid(err_out);
	req_init(&req, STORE_REQ_APP_PASSWORD_REVOKE);
	req.account = account;
	req.s1 = name;
	return req_run(st, &req, err_out);
}

int
store_app_password_touch(struct store *st, int64_t id, int64_t when,
    const char *peer, enum store_err *err_out)
{
	struct store_req req;

	req_init(&req, STORE_REQ_APP_PASSWORD_TOUCH);
	req.id = id;
	req.when = when;
	req.s1 = peer;
	return req_run(st, &req, err_out);
}

/* ---- Mailboxes ------------------------------------------------------- */

/* Normalizes name (and name2) into new strings for a mailbox request of
 * kind. Returns 0, or -1 (STORE_INVALID). */
static int
mailbox_names(enum store_req_kind kind, const char *name, const char *name2,
    char **norm_out, char **norm2_out, enum store_err *err_out)
{
	const char *created;

	*norm_out = *norm2_out = NULL;
	if (store_name_mailbox(name, norm_out) < 0)
		return invalid(err_out);
	if (name2 != NULL && store_name_mailbox(name2, norm2_out) < 0) {
		free(*norm_out);
		*norm_out = NULL;
		return invalid(err_out);
	}
	/* The name a mailbox gets (CREATE's, RENAME's second) must not
	 * read as a path. */
	created = kind == STORE_REQ_MAILBOX_CREATE ? *norm_out : *norm2_out;
	if (created != NULL && !is_store_name_creatable(created)) {
		free(*norm_out);
		free(*norm2_out);
		*norm_out = *norm2_out = NULL;
		return invalid(err_out);
	}
	return 0;
}

static int
mailbox_req(struct store *st, enum store_req_kind kind, int64_t account,
    const char *name, const char *name2, struct store_req *req,
    enum store_err *err_out)
{
	char *norm, *norm2;
	int rc;

	if (mailbox_names(kind, name, name2, &norm, &norm2, err_out) < 0)
		return -1;
	req->kind = kind;
	req->account = account;
	req->s1 = norm;
	req->s2 = norm2;
	rc = req_run(st, req, err_out);
	free(norm);
	free(norm2);
	return rc;
}

int
store_mailbox_submit(struct store *st, const struct store_mailbox_op *op,
    struct event_base *base, store_mailbox_cb cb, void *arg)
{
	static const enum store_req_kind kinds[] = {
		[STORE_MAILBOX_CREATE] = STORE_REQ_MAILBOX_CREATE,
		[STORE_MAILBOX_RENAME] = STORE_REQ_MAILBOX_RENAME,
		[STORE_MAILBOX_DELETE] = STORE_REQ_MAILBOX_DELETE,
		[STORE_MAILBOX_SUBSCRIBE] = STORE_REQ_MAILBOX_SUBSCRIBE,
		[STORE_MAILBOX_UNSUBSCRIBE] = STORE_REQ_MAILBOX_SUBSCRIBE,
		[STORE_MAILBOX_SUBSCRIBE_NAME] = STORE_REQ_MAILBOX_SUBSCRIBE,
	};
	struct store_req *req = xmalloc(sizeof(*req));
	enum store_err err;

	if ((int)op->kind < 0 || (size_t)op->kind >= ARRAY_LEN(kinds))
		panic("store_mailbox_submit: kind %d", (int)op->kind);
	req_init(req, kinds[op->kind]);
	req->account = op->account;
	req->actor = op->actor == op->account ? 0 : op->actor;
	req->special = op->special;
	req->is_on = op->kind == STORE_MAILBOX_SUBSCRIBE ||
	    op->kind == STORE_MAILBOX_SUBSCRIBE_NAME;
	req->is_name_only = op->kind == STORE_MAILBOX_SUBSCRIBE_NAME;
	if ((int)op->special < STORE_SPECIAL_NONE ||
	    op->special > STORE_SPECIAL_FLAGGED)
		req->err = STORE_INVALID;
	else if (mailbox_names(req->kind, op->name,
	    op->kind == STORE_MAILBOX_RENAME ? op->to : NULL,
	    &req->owned_s1, &req->owned_s2, &err) < 0)
		req->err = err;
	req->s1 = req->owned_s1;
	req->s2 = req->owned_s2;
	req->base = base;
	req->mailbox_cb = cb;
	req->arg = arg;
	/* A refused name still travels through the writer so that the
	 * callback comes later, from the loop (store.h). */
	if (store_writer_submit(st, req) < 0) {
		free(req->owned_s1);
		free(req->owned_s2);
		free(req);
		return -1;
	}
	return 0;
}

int
store_mailbox_create(struct store *st, int64_t account, const char *name,
    enum store_special special, enum store_err *err_out)
{
	struct store_req req;

	if ((int)special < STORE_SPECIAL_NONE ||
	    special > STORE_SPECIAL_FLAGGED)
		return invalid(err_out);
	req_init(&req, STORE_REQ_MAILBOX_CREATE);
	req.special = special;
	return mailbox_req(st, STORE_REQ_MAILBOX_CREATE, account, name, NULL,
	    &req, err_out);
}

int
store_mailbox_rename(struct store *st, int64_t account, const char *from,
    const char *to, enum store_err *err_out)
{
	struct store_req req;

	req_init(&req, STORE_REQ_MAILBOX_RENAME);
	return mailbox_req(st, STORE_REQ_MAILBOX_RENAME, account, from, to,
	    &req, err_out);
}

int
store_mailbox_delete(struct store *st, int64_t account, const char *name,
    enum store_err *err_out)
{
	struct store_req req;

	req_init(&req, STORE_REQ_MAILBOX_DELETE);
	return mailbox_req(st, STORE_REQ_MAILBOX_DELETE, account, name, NULL,
	    &req, err_out);
}

int
store_mailbox_subscribe(struct store *st, int64_t account, const char *name,
    bool is_subscribed, enum store_err *err_out)
{
	struct store_req req;

	req_init(&req, STORE_REQ_MAILBOX_SUBSCRIBE);
	req.is_on = is_subscribed;
	return mailbox_req(st, STORE_REQ_MAILBOX_SUBSCRIBE, account, name,
	    NULL, &req, err_out);
}

int
store_subscription_list(struct store *st, int64_t account,
    char ***names_out, enum store_err *err_out)
{
	return st->be->subscription_list(st, account, names_out, err_out);
}

int
store_subscription_has(struct store *st, int64_t account, const char *name,
    enum store_err *err_out)
{
	return st->be->subscription_has(st, account, name, err_out);
}

int
store_mailbox_get(struct store *st, int64_t account, const char *name,
    struct store_mailbox *mb_out, enum store_err *err_out)
{
	char *norm;
	int rc;

	memset(mb_out, 0, sizeof(*mb_out));
	if (store_name_mailbox(name, &norm) < 0)
		return invalid(err_out);
	rc = st->be->mailbox_get(st, account, norm, mb_out, err_out);
	/* A name that could never have been created is invalid, not
	 * missing: APPEND must not answer TRYCREATE to it. */
	if (rc < 0 && *err_out == STORE_NOT_FOUND &&
	    !is_store_name_creatable(norm))
		*err_out = STORE_INVALID;
	free(norm);
	return rc;
}

int
store_mailbox_get_id(struct store *st, int64_t account, int64_t id,
    struct store_mailbox *mb_out, enum store_err *err_out)
{
	memset(mb_out, 0, sizeof(*mb_out));
	return st->be->mailbox_get_id(st, account, id, mb_out, err_out);
}

int
store_mailbox_list(struct store *st, int64_t account,
    struct store_mailbox **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	return st->be->mailbox_list(st, account, list_out, n_out, err_out);
}

/* ---- Messages -------------------------------------------------------- */

int
store_msg_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, struct store_msg **list_out, size_t *n_out,
    enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	if (uid_min > uid_max)
		return invalid(err_out);
	return st->be->msg_list(st, mailbox, uid_min, uid_max, list_out,
	    n_out, err_out);
}

/* The In-Reply-To and References of a message stored before schema 9,
 * from its header: at most MIME_MAX_HEADER bytes are read, up to the
 * blank line. A message that cannot be read keeps none (threading then
 * goes by its Message-ID and subject). */
static void
sort_ids_from_header(struct store *st, struct store_sort_msg *m)
{
	enum store_err err;
	char *buf;
	size_t len = 0;
	int fd = st->be->blob_open(st, m->blob, &err);

	if (fd < 0)
		return;
	buf = xmalloc(MIME_MAX_HEADER + 1);
	while (len < MIME_MAX_HEADER) {
		ssize_t r = pread(fd, buf + len, MIME_MAX_HEADER - len,
		    (off_t)len);

		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (strstr(buf, "\n\r\n") != NULL ||
		    strstr(buf, "\n\n") != NULL)
			break;
	}
	close(fd);
	if (len > 0) {
		struct mime_info mi;
		char *end = strstr(buf, "\n\r\n"), *end2 = strstr(buf,
		    "\n\n");

		if (end2 != NULL && (end == NULL || end2 < end))
			end = end2;
		if (end != NULL)
			len = (size_t)(end - buf) + 1;
		if (mime_parse(buf, len, &mi) == 0) {
			m->in_reply_to = mi.in_reply_to;
			m->references = mi.references;
			mi.in_reply_to = NULL;
			mi.references = NULL;
			mime_info_deinit(&mi);
		}
	}
	free(buf);
}

int
store_sort_list(struct store *st, int64_t mailbox, uint32_t uid_min,
    uint32_t uid_max, unsigned what, struct store_sort_msg **list_out,
    size_t *n_out, enum store_err *err_out)
{
	*list_out = NULL;
	*n_out = 0;
	if (uid_min > uid_max)
		return invalid(err_out);
	if (st->be->sort_list(st, mailbox, uid_min, uid_max, what, list_out,
	    n_out, err_out) < 0)
		return -1;
	for (size_t i = 0; i < *n_out; i++) {
		if ((*list_out)[i].is_ids_unknown)
			sort_ids_from_header(st, &(*list_out)[i]);
	}
	return 0;
}

void
store_sort_list_free(struct store_sort_msg **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].subject);
		free((*list)[i].envelope);
		free((*list)[i].message_id);
		free((*list)[i].in_reply_to);
		free((*list)[i].references);
	}
	free(*list);
	*list = NULL;
}

int
store_msg_changes(struct store *st, int64_t mailbox, uint64_t modseq,
    struct store_msg **changed_out, size_t *nchanged_out,
    uint32_t **expunged_out, size_t *nexpunged_out,
    uint64_t *highestmodseq_out, enum store_err *err_out)
{
	*changed_out = NULL;
	*nchanged_out = 0;
	*expunged_out = NULL;
	*nexpunged_out = 0;
	if (highestmodseq_out != NULL)
		*highestmodseq_out = 0;
	return st->be->msg_changes(st, mailbox, modseq, changed_out,
	    nchanged_out, expunged_out, nexpunged_out, highestmodseq_out,
	    err_out);
}

int
store_blob_structures(struct store *st, const int64_t *blobs, size_t n,
    struct store_structure *s_out, bool *is_found_out,
    enum store_err *err_out)
{
	for (size_t i = 0; i < n; i++) {
		memset(&s_out[i], 0, sizeof(s_out[i]));
		s_out[i].date = -1;
		is_found_out[i] = false;
	}
	if (n == 0) {
		*err_out = STORE_OK;
		return 0;
	}
	if (st->be->blob_structures(st, blobs, n, s_out, is_found_out,
	    err_out) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		store_structure_deinit(&s_out[i]);
		is_found_out[i] = false;
	}
	return -1;
}

int
store_blob_structure(struct store *st, int64_t blob,
    struct store_structure *s_out, enum store_err *err_out)
{
	bool is_found;

	if (store_blob_structures(st, &blob, 1, s_out, &is_found,
	    err_out) < 0)
		return -1;
	if (!is_found) {
		*err_out = STORE_NOT_FOUND;
		return -1;
	}
	return 0;
}

int
store_blob_open(struct store *st, int64_t blob, enum store_err *err_out)
{
	return st->be->blob_open(st, blob, err_out);
}

/* ---- Backup ---------------------------------------------------------- */

int
store_snapshot_new(struct store *st,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    struct store_snapshot **snap_out, char *err, size_t errlen)
{
	struct store_snapshot *snap = xcalloc(1, sizeof(*snap));

	snap->st = st;
	snap->db_fd = -1;
	snap->lock_fd = -1;
	if (st->be->snapshot(st, snap, progress, arg, err, errlen) < 0) {
		store_snapshot_free(&snap);
		return -1;
	}
	*snap_out = snap;
	return 0;
}

int
store_snapshot_db_fd(const struct store_snapshot *snap)
{
	return snap->db_fd;
}

int64_t
store_snapshot_schema(const struct store_snapshot *snap)
{
	return snap->schema;
}

const struct store_snapshot_blob *
store_snapshot_blobs(const struct store_snapshot *snap, size_t *n_out)
{
	*n_out = snap->nblobs;
	return snap->blobs;
}

int
store_snapshot_blob_link(struct store_snapshot *snap, int64_t blob,
    int dirfd, const char *name)
{
	return snap->st->be->blob_link(snap->st, blob, dirfd, name);
}

void
store_snapshot_free(struct store_snapshot **snapp)
{
	struct store_snapshot *snap = *snapp;

	if (snap == NULL)
		return;
	*snapp = NULL;
	if (snap->db_fd >= 0)
		close(snap->db_fd);
	/* Closing the descriptor drops the shared lock: the writer may
	 * unlink body files again at its next commit. */
	if (snap->lock_fd >= 0)
		close(snap->lock_fd);
	free(snap->blobs);
	free(snap);
}

/* ---- Search ---------------------------------------------------------- */

static bool
is_header_name(const char *s)
{
	/* RFC 5322 §3.6.8: printable US-ASCII except colon. */
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s <= ' ' || *s >= 127 || *s == ':')
			return false;
	}
	return true;
}

static bool
is_cond_valid(const struct store_cond *c, int depth, size_t *nodes)
{
	if (depth > COND_DEPTH_MAX || ++*nodes > COND_NODES_MAX)
		return false;
	if (c->nchildren > 0 && c->children == NULL)
		return false;
	switch (c->kind) {
	case STORE_COND_ALL:
	case STORE_COND_FLAG_SET:
	case STORE_COND_FLAG_UNSET:
	case STORE_COND_INTERNAL_BEFORE:
	case STORE_COND_INTERNAL_SINCE:
	case STORE_COND_SENT_BEFORE:
	case STORE_COND_SENT_SINCE:
	case STORE_COND_SAVED_BEFORE:
	case STORE_COND_SAVED_SINCE:
	case STORE_COND_LARGER:
	case STORE_COND_SMALLER:
	case STORE_COND_MODSEQ:
		return true;
	case STORE_COND_UID_RANGE:
		return c->n <= c->hi && c->hi <= UINT32_MAX;
	case STORE_COND_KEYWORD:
	case STORE_COND_NO_KEYWORD:
	case STORE_COND_BODY:
	case STORE_COND_TEXT:
		return c->text != NULL;
	case STORE_COND_HEADER:
		return c->text != NULL && c->field != NULL &&
		    is_header_name(c->field);
	case STORE_COND_NOT:
		if (c->nchildren < 1)
			return false;
		/* FALLTHROUGH */
	case STORE_COND_AND:
	case STORE_COND_OR:
		for (size_t i = 0; i < c->nchildren; i++) {
			if (!is_cond_valid(&c->children[i], depth + 1, nodes))
				return false;
		}
		return true;
	}
	return false;
}

int
store_search(struct store *st, int64_t mailbox, const struct store_cond *cond,
    uint32_t **uids_out, size_t *n_out, enum store_err *err_out)
{
	const struct store_cond all = { .kind = STORE_COND_ALL };
	size_t nodes = 0;

	*uids_out = NULL;
	*n_out = 0;
	if (cond == NULL)
		cond = &all;
	if (!is_cond_valid(cond, 0, &nodes))
		return invalid(err_out);
	return st->be->search(st, mailbox, cond, uids_out, n_out, err_out);
}

/* ---- Changes --------------------------------------------------------- */

static bool
is_change_valid(const struct store_change *c)
{
	for (size_t i = 0; i < c->nuids; i++) {
		if (c->uids[i] == 0 || (i > 0 && c->uids[i] <= c->uids[i - 1]))
			return false;
	}
	if (c->nuids > 0 && c->uids == NULL)
		return false;
	switch (c->kind) {
	case STORE_CHANGE_FLAGS:
		return c->mode == STORE_FLAGS_ADD ||
		    c->mode == STORE_FLAGS_REMOVE ||
		    c->mode == STORE_FLAGS_REPLACE;
	case STORE_CHANGE_EXPUNGE:
	case STORE_CHANGE_COPY:
	case STORE_CHANGE_MOVE:
	case STORE_CHANGE_RETRIEVED:
		return true;
	}
	return false;
}

/* Fills req from c; keywords are normalized into req->owned_keywords. */
static int
change_req_init(struct store_req *req, const struct store_change *c,
    enum store_err *err_out)
{
	req_init(req, STORE_REQ_CHANGE);
	if (!is_change_valid(c))
		return invalid(err_out);
	req->change = *c;
	req->change.flags &= STORE_FLAG_SEEN | STORE_FLAG_ANSWERED |
	    STORE_FLAG_FLAGGED | STORE_FLAG_DELETED | STORE_FLAG_DRAFT;
	if (c->kind == STORE_CHANGE_FLAGS && c->keywords != NULL) {
		if (store_keywords_norm(c->keywords, &req->owned_keywords) < 0)
			return invalid(err_out);
	}
	req->change.keywords = req->owned_keywords;
	return 0;
}

int
store_change_commit(struct store *st, const struct store_change *c,
    struct store_change_result *result_out)
{
	struct store_req req;
	int rc;

	memset(result_out, 0, sizeof(*result_out));
	if (change_req_init(&req, c, &result_out->err) < 0) {
		free(req.owned_keywords);
		return -1;
	}
	rc = store_writer_run(st, &req);
	*result_out = req.cres;
	free(req.owned_keywords);
	free(req.touched);
	store_req_events_clear(&req);
	if (rc < 0) {
		result_out->err = STORE_TEMP;
		return -1;
	}
	result_out->err = req.err;
	return req.err == STORE_OK || req.err == STORE_MODIFIED ? 0 : -1;
}

int
store_change_submit(struct store *st, const struct store_change *c,
    struct event_base *base, store_change_cb cb, void *arg)
{
	struct store_req *req = xmalloc(sizeof(*req));
	enum store_err err;

	if (change_req_init(req, c, &err) < 0)
		req->err = err;
	req->base = base;
	req->change_cb = cb;
	req->arg = arg;
	if (c->nuids > 0) {
		req->owned_uids = xmalloc(c->nuids * sizeof(*c->uids));
		memcpy(req->owned_uids, c->uids, c->nuids * sizeof(*c->uids));
	}
	req->change.uids = req->owned_uids;
	/* An invalid change still travels through the writer so that the
	 * callback comes later, from the loop, as store.h promises. */
	if (store_writer_submit(st, req) < 0) {
		free(req->owned_uids);
		free(req->owned_keywords);
		free(req);
		return -1;
	}
	return 0;
}

/* ---- Maintenance ----------------------------------------------------- */

int
store_check(struct store *st, bool is_repair,
    void (*report)(void *arg, const char *line), void *arg)
{
	struct store_req req;
	enum store_err err;

	req_init(&req, STORE_REQ_CHECK);
	req.is_on = is_repair;
	req.report = report;
	req.report_arg = arg;
	if (req_run(st, &req, &err) < 0)
		return -1;
	return req.problems;
}
