/*
 * pop3_session: POP3 (RFC 1939) with CAPA and response codes (RFC 2449,
 * RFC 3206), STLS (RFC 2595) and AUTH (RFC 5034) through the shared SASL
 * code. The maildrop is INBOX, seen as it was at login: numbers never
 * shift during a session, deletions wait for QUIT (the UPDATE state) and
 * are never applied when the connection just drops. RETR and TOP stream
 * the stored file with dot-stuffing, a piece at a time.
 */
#include "pop3/pop3.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/util.h"
#include "store/store.h"

#define POP3_MAX_ERRORS 20
#define STREAM_CHUNK 65536

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_TRANSACTION,
	POP3_STATE_WAIT,	/* auth, the store, or a stream in progress */
	POP3_STATE_SASL,	/* reading SASL responses */
	POP3_STATE_UPDATE,
};

struct pop3_msg {
	uint32_t uid;
	uint64_t size;
	int64_t blob;
	bool is_deleted;
	bool is_retrieved;	/* RETR during this session */
};

/* A RETR or TOP being sent. */
struct pop3_stream {
	int fd;
	bool is_active;
	bool is_at_line_start;
	bool is_in_header;	/* TOP: still in the header section */
	bool is_top;
	uint64_t body_lines_left;
	bool has_last_char;
	char last_char;
	bool was_cr;		/* TOP: the header's end seen up to CR */
	size_t blank_run;	/* TOP: newline bytes in a row */
};

struct pop3_session {
	struct net_conn *conn;	/* NULL once gone */
	struct event_base *base;
	struct pop3_ctx *ctx;
	const struct config *cfg;
	char sid[24];
	enum pop3_state state;
	struct line_reader reader;
	unsigned errors;
	bool is_paused;
	bool is_output_full;	/* paused until the replies drain */
	bool is_waiting;	/* a callback from auth or the store will come */
	bool is_gone;		/* the connection closed while waiting */
	bool has_starttls;
	char *user;		/* from USER */
	struct auth_sasl *sasl;
	struct auth_identity id;
	bool holds_maildrop;
	uint32_t uidvalidity;
	int64_t mailbox;
	uint32_t retention_days;
	struct pop3_msg *msgs;
	size_t nmsgs;
	struct pop3_stream stream;
};

static void pop3_session_free(struct pop3_session *s);

static void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("pop3_reply: bad format");
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	net_conn_write(s->conn, line, (size_t)n + 2);
}

static void
pop3_error(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pop3_error(struct pop3_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pop3_reply(s, "%s", line);
	if (++s->errors >= POP3_MAX_ERRORS) {
		pop3_reply(s, "-ERR Too many errors, closing connection");
		net_conn_close(s->conn);
	}
}

static void
pop3_pause(struct pop3_session *s)
{
	s->is_paused = true;
	net_conn_pause(s->conn);
}

static void
pop3_resume(struct pop3_session *s)
{
	s->is_paused = false;
	net_conn_resume(s->conn);
}

static bool
is_plain_ok(const struct pop3_session *s)
{
	return is_net_conn_tls(s->conn) || s->cfg->allow_plaintext_auth;
}

static bool
can_stls(const struct pop3_session *s)
{
	return !is_net_conn_tls(s->conn) &&
	    net_conn_listener(s->conn)->tls == CONFIG_TLS_STARTTLS;
}

/* ---- Maildrop -------------------------------------------------------- */

/* RFC 1939 §8: one session per maildrop. Returns false when another POP3
 * session holds it. */
static bool
maildrop_take(struct pop3_ctx *ctx, int64_t account)
{
	bool ok = true;

	pthread_mutex_lock(&ctx->mu);
	for (size_t i = 0; i < ctx->nin_use; i++) {
		if (ctx->in_use[i] == account)
			ok = false;
	}
	if (ok) {
		ctx->in_use = xrealloc(ctx->in_use,
		    (ctx->nin_use + 1) * sizeof(*ctx->in_use));
		ctx->in_use[ctx->nin_use++] = account;
	}
	pthread_mutex_unlock(&ctx->mu);
	return ok;
}

static void
maildrop_drop(struct pop3_ctx *ctx, int64_t account)
{
	pthread_mutex_lock(&ctx->mu);
	for (size_t i = 0; i < ctx->nin_use; i++) {
		if (ctx->in_use[i] == account) {
			ctx->in_use[i] = ctx->in_use[--ctx->nin_use];
			break;
		}
	}
	pthread_mutex_unlock(&ctx->mu);
}

void
pop3_ctx_init(struct pop3_ctx *ctx, struct store *st, struct auth *a)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->store = st;
	ctx->auth = a;
	pthread_mutex_init(&ctx->mu, NULL);
}

void
pop3_ctx_deinit(struct pop3_ctx *ctx)
{
	free(ctx->in_use);
	pthread_mutex_destroy(&ctx->mu);
}

/* Reads INBOX as it is now: the session's numbering. */
static int
maildrop_load(struct pop3_session *s)
{
	struct store_mailbox mb;
	struct store_msg *list = NULL;
	size_t n = 0;
	enum store_err err;

	if (store_mailbox_get(s->ctx->store, s->id.account, "INBOX", &mb,
	    &err) < 0)
		return -1;
	s->mailbox = mb.id;
	s->uidvalidity = mb.uidvalidity;
	store_mailbox_deinit(&mb);
	if (store_msg_list(s->ctx->store, s->mailbox, 1, UINT32_MAX, &list,
	    &n, &err) < 0)
		return -1;
	s->msgs = xcalloc(n ? n : 1, sizeof(*s->msgs));
	for (size_t i = 0; i < n; i++) {
		/* A message marked \Deleted over IMAP is on its way out. */
		if (list[i].flags & STORE_FLAG_DELETED)
			continue;
		s->msgs[s->nmsgs].uid = list[i].uid;
		s->msgs[s->nmsgs].size = list[i].size;
		s->msgs[s->nmsgs].blob = list[i].blob;
		s->nmsgs++;
	}
	store_msg_list_free(&list, n);
	return 0;
}

/* The message numbered by arg, or NULL after replying -ERR. */
static struct pop3_msg *
msg_arg(struct pop3_session *s, const char *arg)
{
	char *end;
	unsigned long n;

	if (arg == NULL || *arg < '0' || *arg > '9') {
		pop3_error(s, "-ERR Expected a message number");
		return NULL;
	}
	errno = 0;
	n = strtoul(arg, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != ' ') || n == 0 ||
	    n > s->nmsgs) {
		pop3_error(s, "-ERR No such message");
		return NULL;
	}
	if (s->msgs[n - 1].is_deleted) {
		pop3_error(s, "-ERR Message %lu already deleted", n);
		return NULL;
	}
	return &s->msgs[n - 1];
}

/* ---- Streaming RETR and TOP ----------------------------------------- */

static void
stream_end(struct pop3_session *s)
{
	if (s->stream.fd >= 0)
		close(s->stream.fd);
	s->stream.fd = -1;
	s->stream.is_active = false;
}

/* Sends the next piece of the message, dot-stuffed (RFC 1939 §3). */
static void
stream_pump(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	char in[STREAM_CHUNK], out[2 * STREAM_CHUNK + 8];

	while (st->is_active && net_conn_pending(s->conn) < NET_DRAIN_LOW) {
		ssize_t n = read(st->fd, in, sizeof(in));
		size_t o = 0;
		bool is_done = false;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* The reply has begun: the client can only be told
			 * by the connection ending early. */
			log_error(s->sid, "pop3.read_failed error=\"%s\"",
			    strerror(errno));
			stream_end(s);
			net_conn_close(s->conn);
			return;
		}
		for (ssize_t i = 0; i < n && !is_done; i++) {
			char c = in[i];

			if (st->is_top && !st->is_in_header &&
			    st->is_at_line_start && st->body_lines_left == 0) {
				is_done = true;
				break;
			}
			if (st->is_at_line_start && c == '.')
				out[o++] = '.';
			out[o++] = c;
			st->is_at_line_start = c == '\n';
			if (c == '\n') {
				if (st->is_top && st->is_in_header &&
				    st->blank_run > 0)
					st->is_in_header = false;
				else if (st->is_top && !st->is_in_header &&
				    st->body_lines_left > 0)
					st->body_lines_left--;
				st->blank_run = 1;
			} else if (c != '\r') {
				st->blank_run = 0;
			}
			st->has_last_char = true;
			st->last_char = c;
		}
		if (n == 0)
			is_done = true;
		net_conn_write(s->conn, out, o);
		if (is_done) {
			/* The terminating dot goes on a line of its own. */
			if (st->has_last_char && st->last_char != '\n')
				net_conn_write(s->conn, "\r\n", 2);
			net_conn_write(s->conn, ".\r\n", 3);
			stream_end(s);
			s->state = POP3_STATE_TRANSACTION;
			pop3_resume(s);
			return;
		}
	}
}

static void
stream_start(struct pop3_session *s, struct pop3_msg *m, bool is_top,
    uint64_t lines)
{
	enum store_err err;
	int fd = store_blob_open(s->ctx->store, m->blob, &err);

	if (fd < 0) {
		/* Expunged by IMAP since login, or the store failed. */
		pop3_reply(s, "-ERR The message is gone or cannot be read "
		    "(deleted by another session?)");
		return;
	}
	memset(&s->stream, 0, sizeof(s->stream));
	s->stream.fd = fd;
	s->stream.is_active = true;
	s->stream.is_at_line_start = true;
	s->stream.is_top = is_top;
	s->stream.is_in_header = true;
	s->stream.body_lines_left = lines;
	s->stream.blank_run = 1;	/* no header at all is a header's end */
	if (is_top)
		pop3_reply(s, "+OK Top of message follows");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	s->state = POP3_STATE_WAIT;
	pop3_pause(s);
	stream_pump(s);
}

/* ---- Commands ---------------------------------------------------------- */

static void
cmd_capa(struct pop3_session *s)
{
	const char *mechs = s->ctx->auth ? auth_mechanisms(s->ctx->auth,
	    is_plain_ok(s)) : "";

	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	if (s->state == POP3_STATE_AUTHORIZATION && is_plain_ok(s))
		pop3_reply(s, "USER");
	if (s->state == POP3_STATE_AUTHORIZATION && *mechs)
		pop3_reply(s, "SASL %s", mechs);
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	/* RFC 2449 §6.7: per-user policy; after login, this user's. */
	if (s->state == POP3_STATE_AUTHORIZATION)
		pop3_reply(s, "EXPIRE NEVER USER");
	else if (s->retention_days == 0)
		pop3_reply(s, "EXPIRE NEVER");
	else
		pop3_reply(s, "EXPIRE %u", s->retention_days);
	pop3_reply(s, "LOGIN-DELAY 0");
	if (can_stls(s))
		pop3_reply(s, "STLS");
	pop3_reply(s, "IMPLEMENTATION postern");
	pop3_reply(s, ".");
}

static void
cmd_stls(struct pop3_session *s)
{
	if (!can_stls(s)) {
		pop3_error(s, "-ERR TLS is already active or not offered here");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	if (net_conn_starttls(s->conn) < 0) {
		net_conn_close(s->conn);
		return;
	}
	/* RFC 2595 §4: nothing said before counts. */
	free(s->user);
	s->user = NULL;
	line_reader_init(&s->reader, s->reader.max);
	s->has_starttls = true;
}

static void
retention_apply_done(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;

	(void)r;
	s->is_waiting = false;
	if (s->is_gone) {
		pop3_session_free(s);
		return;
	}
	if (maildrop_load(s) < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try "
		    "again later");
		net_conn_close(s->conn);
		return;
	}
	s->state = POP3_STATE_TRANSACTION;
	log_info(s->sid, "pop3.login user=<%s> messages=%zu", s->id.address,
	    s->nmsgs);
	pop3_reply(s, "+OK Logged in, %zu messages", s->nmsgs);
	pop3_resume(s);
}

/* The account proved who it is: take the maildrop, apply the retention
 * policy ("delete after N days" of messages already downloaded), load. */
static void
login_continue(struct pop3_session *s)
{
	struct store_account a;
	struct store_mailbox mb;
	struct store_msg *list = NULL;
	size_t n = 0;
	enum store_err err;
	uint32_t *expired;
	size_t nexpired = 0;
	time_t cutoff;

	if (!maildrop_take(s->ctx, s->id.account)) {
		log_info(s->sid, "pop3.login user=<%s> result=in_use",
		    s->id.address);
		pop3_reply(s, "-ERR [IN-USE] Mailbox already in use by another "
		    "POP3 session");
		s->state = POP3_STATE_AUTHORIZATION;
		pop3_resume(s);
		return;
	}
	s->holds_maildrop = true;
	if (store_account_get_by_id(s->ctx->store, s->id.account, &a,
	    &err) == 0) {
		s->retention_days = a.pop3_retention_days;
		store_account_deinit(&a);
	}
	if (s->retention_days == 0 || store_mailbox_get(s->ctx->store,
	    s->id.account, "INBOX", &mb, &err) < 0) {
		s->is_waiting = true;
		retention_apply_done(s, NULL);
		return;
	}
	cutoff = time(NULL) - (time_t)s->retention_days * 86400;
	if (store_msg_list(s->ctx->store, mb.id, 1, UINT32_MAX, &list, &n,
	    &err) < 0)
		n = 0;
	expired = xcalloc(n ? n : 1, sizeof(*expired));
	for (size_t i = 0; i < n; i++) {
		if (list[i].retrieved != 0 && list[i].retrieved < cutoff)
			expired[nexpired++] = list[i].uid;
	}
	store_msg_list_free(&list, n);
	s->is_waiting = true;
	if (nexpired > 0) {
		struct store_change c = {
			.mailbox = mb.id,
			.uids = expired,
			.nuids = nexpired,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		log_info(s->sid, "pop3.retention user=<%s> expunged=%zu "
		    "days=%u", s->id.address, nexpired, s->retention_days);
		if (store_change_submit(s->ctx->store, &c, s->base,
		    retention_apply_done, s) == 0) {
			free(expired);
			store_mailbox_deinit(&mb);
			return;
		}
	}
	free(expired);
	store_mailbox_deinit(&mb);
	retention_apply_done(s, NULL);
}

static void
on_auth_done(void *arg, enum auth_result result,
    const struct auth_identity *id)
{
	struct pop3_session *s = arg;

	s->is_waiting = false;
	if (s->is_gone) {
		pop3_session_free(s);
		return;
	}
	auth_sasl_free(&s->sasl);
	s->state = POP3_STATE_AUTHORIZATION;
	switch (result) {
	case AUTH_OK:
		s->id = *id;
		login_continue(s);
		return;
	case AUTH_PROTO_DISABLED:
		pop3_error(s, "-ERR [AUTH] POP3 access is disabled for this "
		    "account");
		break;
	case AUTH_LOCKED:
		pop3_error(s, "-ERR [AUTH] Account temporarily locked after "
		    "too many failed logins, try again later");
		break;
	case AUTH_TEMP:
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary failure, try again "
		    "later");
		break;
	default:
		pop3_error(s, "-ERR [AUTH] Authentication failed");
		break;
	}
	pop3_resume(s);
}

static void
cmd_user(struct pop3_session *s, const char *arg)
{
	if (!is_plain_ok(s)) {
		pop3_error(s, "-ERR [AUTH] Plaintext login is only allowed "
		    "over TLS: use STLS, or port 995");
		return;
	}
	if (arg == NULL || *arg == '\0' || strlen(arg) > 255) {
		pop3_error(s, "-ERR Expected a user name");
		return;
	}
	free(s->user);
	s->user = xstrdup(arg);
	pop3_reply(s, "+OK Send the password");
}

static void
cmd_pass(struct pop3_session *s, const char *arg)
{
	if (s->user == NULL) {
		pop3_error(s, "-ERR Send USER first");
		return;
	}
	if (!is_plain_ok(s) || s->ctx->auth == NULL) {
		pop3_error(s, "-ERR [AUTH] Plaintext login is only allowed "
		    "over TLS");
		return;
	}
	s->state = POP3_STATE_WAIT;
	s->is_waiting = true;
	pop3_pause(s);
	auth_login(s->ctx->auth, s->user, arg ? arg : "", AUTH_PROTO_POP3,
	    net_conn_peer(s->conn), s->sid, s->base, on_auth_done, s);
	free(s->user);
	s->user = NULL;
}

static void
sasl_feed(struct pop3_session *s, const char *b64, size_t len)
{
	const char *challenge;
	enum auth_step step;

	s->is_waiting = true;
	step = auth_sasl_step(s->sasl, b64, len, &challenge, s->base,
	    on_auth_done, s);
	if (step == AUTH_STEP_CHALLENGE) {
		s->is_waiting = false;
		s->state = POP3_STATE_SASL;
		pop3_reply(s, "+ %s", challenge);
	} else if (step == AUTH_STEP_WAIT) {
		s->state = POP3_STATE_WAIT;
		pop3_pause(s);
	} else {
		s->is_waiting = false;
		auth_sasl_free(&s->sasl);
		s->state = POP3_STATE_AUTHORIZATION;
		pop3_error(s, "-ERR Cannot decode the response");
	}
}

static void
cmd_auth(struct pop3_session *s, const char *arg)
{
	const char *sp;
	char mech[32];
	size_t mlen;

	if (s->ctx->auth == NULL) {
		pop3_error(s, "-ERR AUTH is not available");
		return;
	}
	if (arg == NULL || *arg == '\0') {
		/* RFC 1734: without an argument, the mechanisms. */
		char *list = xstrdup(auth_mechanisms(s->ctx->auth,
		    is_plain_ok(s)));

		pop3_reply(s, "+OK");
		for (char *save = NULL, *m = strtok_r(list, " ", &save);
		    m != NULL; m = strtok_r(NULL, " ", &save))
			pop3_reply(s, "%s", m);
		pop3_reply(s, ".");
		free(list);
		return;
	}
	sp = strchr(arg, ' ');
	mlen = sp ? (size_t)(sp - arg) : strlen(arg);
	if (mlen >= sizeof(mech)) {
		pop3_error(s, "-ERR Unknown mechanism");
		return;
	}
	memcpy(mech, arg, mlen);
	mech[mlen] = '\0';
	s->sasl = auth_sasl_new(s->ctx->auth, mech, is_plain_ok(s),
	    AUTH_PROTO_POP3, net_conn_peer(s->conn), s->sid);
	if (s->sasl == NULL) {
		pop3_error(s, "-ERR Unknown mechanism, or not allowed without "
		    "TLS");
		return;
	}
	if (sp != NULL) {
		sasl_feed(s, sp + 1, strlen(sp + 1));
		return;
	}
	s->state = POP3_STATE_SASL;
	pop3_reply(s, "+ %s", auth_sasl_first_challenge(s->sasl));
}

static void
cmd_stat(struct pop3_session *s)
{
	size_t n = 0;
	uint64_t size = 0;

	for (size_t i = 0; i < s->nmsgs; i++) {
		if (!s->msgs[i].is_deleted) {
			n++;
			size += s->msgs[i].size;
		}
	}
	pop3_reply(s, "+OK %zu %llu", n, (unsigned long long)size);
}

static void
cmd_list(struct pop3_session *s, const char *arg, bool is_uidl)
{
	if (arg != NULL && *arg != '\0') {
		struct pop3_msg *m = msg_arg(s, arg);

		if (m == NULL)
			return;
		if (is_uidl)
			pop3_reply(s, "+OK %zu %u.%u",
			    (size_t)(m - s->msgs) + 1, s->uidvalidity, m->uid);
		else
			pop3_reply(s, "+OK %zu %llu",
			    (size_t)(m - s->msgs) + 1,
			    (unsigned long long)m->size);
		return;
	}
	pop3_reply(s, "+OK");
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].is_deleted)
			continue;
		/* RFC 1939 §7: UIDL values stay the same forever. */
		if (is_uidl)
			pop3_reply(s, "%zu %u.%u", i + 1, s->uidvalidity,
			    s->msgs[i].uid);
		else
			pop3_reply(s, "%zu %llu", i + 1,
			    (unsigned long long)s->msgs[i].size);
	}
	pop3_reply(s, ".");
}

static void
cmd_top(struct pop3_session *s, const char *arg)
{
	struct pop3_msg *m = msg_arg(s, arg);
	const char *sp;
	char *end;
	unsigned long long lines;

	if (m == NULL)
		return;
	sp = strchr(arg, ' ');
	if (sp == NULL || sp[1] < '0' || sp[1] > '9') {
		pop3_error(s, "-ERR Syntax: TOP message lines");
		return;
	}
	lines = strtoull(sp + 1, &end, 10);
	if (*end != '\0') {
		pop3_error(s, "-ERR Syntax: TOP message lines");
		return;
	}
	stream_start(s, m, true, lines);
}

static void
on_update_done(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;
	size_t deleted = 0;

	s->is_waiting = false;
	if (s->is_gone) {
		pop3_session_free(s);
		return;
	}
	for (size_t i = 0; i < s->nmsgs; i++)
		deleted += s->msgs[i].is_deleted;
	if (r != NULL && r->err != STORE_OK) {
		/* RFC 1939 §6: -ERR when some deletions failed. */
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not "
		    "removed, try again later");
	} else {
		log_info(s->sid, "pop3.update deleted=%zu", deleted);
		pop3_reply(s, "+OK postern signing off (%zu messages deleted)",
		    deleted);
	}
	net_conn_close(s->conn);
}

static void
retrieved_noted(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;
	uint32_t *uids;
	size_t n = 0;

	/* QUIT was given: deletions happen even if the client is gone. */
	(void)r;
	uids = xcalloc(s->nmsgs ? s->nmsgs : 1, sizeof(*uids));
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].is_deleted)
			uids[n++] = s->msgs[i].uid;
	}
	if (n > 0) {
		struct store_change c = {
			.mailbox = s->mailbox,
			.uids = uids,
			.nuids = n,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		if (store_change_submit(s->ctx->store, &c, s->base,
		    on_update_done, s) == 0) {
			free(uids);
			return;
		}
		free(uids);
		on_update_done(s, &(struct store_change_result){
		    .err = STORE_TEMP });
		return;
	}
	free(uids);
	on_update_done(s, NULL);
}

/* RFC 1939 §6: the UPDATE state, only after QUIT. */
static void
cmd_quit_update(struct pop3_session *s)
{
	uint32_t *uids = xcalloc(s->nmsgs ? s->nmsgs : 1, sizeof(*uids));
	size_t n = 0;

	s->state = POP3_STATE_UPDATE;
	pop3_pause(s);
	s->is_waiting = true;
	/* Retrieved, kept messages: the retention policy counts from now. */
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].is_retrieved && !s->msgs[i].is_deleted)
			uids[n++] = s->msgs[i].uid;
	}
	if (n > 0) {
		struct store_change c = {
			.mailbox = s->mailbox,
			.uids = uids,
			.nuids = n,
			.kind = STORE_CHANGE_RETRIEVED,
		};

		if (store_change_submit(s->ctx->store, &c, s->base,
		    retrieved_noted, s) == 0) {
			free(uids);
			return;
		}
	}
	free(uids);
	retrieved_noted(s, NULL);
}

static bool
is_cmd(const char *line, size_t len, const char *cmd, const char **arg)
{
	size_t n = strlen(cmd);

	if (len < n || strncasecmp(line, cmd, n) != 0 ||
	    (len > n && line[n] != ' '))
		return false;
	*arg = len > n ? line + n + 1 : NULL;
	return true;
}

static void
pop3_line(struct pop3_session *s, char *line, size_t len)
{
	const char *arg;

	if (s->state == POP3_STATE_SASL) {
		if (len == 1 && line[0] == '*') {
			auth_sasl_free(&s->sasl);
			s->state = POP3_STATE_AUTHORIZATION;
			pop3_error(s, "-ERR Authentication cancelled");
			return;
		}
		sasl_feed(s, line, len);
		return;
	}
	if (is_cmd(line, len, "CAPA", &arg)) {
		cmd_capa(s);
	} else if (is_cmd(line, len, "QUIT", &arg)) {
		if (s->state == POP3_STATE_TRANSACTION) {
			cmd_quit_update(s);
			return;
		}
		pop3_reply(s, "+OK postern signing off");
		net_conn_close(s->conn);
	} else if (is_cmd(line, len, "NOOP", &arg) &&
	    s->state == POP3_STATE_TRANSACTION) {
		pop3_reply(s, "+OK");
	} else if (s->state == POP3_STATE_AUTHORIZATION) {
		if (is_cmd(line, len, "STLS", &arg))
			cmd_stls(s);
		else if (is_cmd(line, len, "USER", &arg))
			cmd_user(s, arg);
		else if (is_cmd(line, len, "PASS", &arg))
			cmd_pass(s, arg);
		else if (is_cmd(line, len, "AUTH", &arg))
			cmd_auth(s, arg);
		else
			pop3_error(s, "-ERR Unknown command, or not before "
			    "login");
	} else if (is_cmd(line, len, "STAT", &arg)) {
		cmd_stat(s);
	} else if (is_cmd(line, len, "LIST", &arg)) {
		cmd_list(s, arg, false);
	} else if (is_cmd(line, len, "UIDL", &arg)) {
		cmd_list(s, arg, true);
	} else if (is_cmd(line, len, "RETR", &arg)) {
		struct pop3_msg *m = msg_arg(s, arg);

		if (m != NULL) {
			m->is_retrieved = true;
			stream_start(s, m, false, 0);
		}
	} else if (is_cmd(line, len, "TOP", &arg)) {
		cmd_top(s, arg);
	} else if (is_cmd(line, len, "DELE", &arg)) {
		struct pop3_msg *m = msg_arg(s, arg);

		if (m != NULL) {
			m->is_deleted = true;
			pop3_reply(s, "+OK Message %zu deleted",
			    (size_t)(m - s->msgs) + 1);
		}
	} else if (is_cmd(line, len, "RSET", &arg)) {
		for (size_t i = 0; i < s->nmsgs; i++)
			s->msgs[i].is_deleted = false;
		pop3_reply(s, "+OK");
	} else {
		pop3_error(s, "-ERR Unknown command");
	}
}

static void *
pop3_session_open(struct net_conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->ctx = net_conn_ctx(c);
	s->cfg = net_conn_config(c);
	snprintf(s->sid, sizeof(s->sid), "%s", net_conn_sid(c));
	s->base = net_conn_base(c);
	s->stream.fd = -1;
	/* RFC 2449 §4: commands up to 255 octets; we allow the configured
	 * line length, SASL responses being longer. */
	line_reader_init(&s->reader, s->cfg->line_length);
	pop3_reply(s, "+OK postern ready");
	return s;
}

static void
pop3_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct pop3_session *s = arg;
	const char *line;
	size_t len;

	(void)c;
	while (!s->is_paused) {
		enum parse_rc rc;
		char *copy;

		/* A client that pipelines and never reads must not make us
		 * queue its replies without bound. */
		if (net_conn_pending(s->conn) >= NET_DRAIN_LOW) {
			s->is_output_full = true;
			pop3_pause(s);
			break;
		}
		rc = line_reader_next(&s->reader, in, &line, &len);
		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			pop3_error(s, "-ERR Line too long");
			continue;
		}
		/* Commands take NUL-terminated arguments. */
		copy = xstrndup(line, len);
		pop3_line(s, copy, strlen(copy));
		secret_wipe(copy, len);
		free(copy);
		if (s->has_starttls) {
			s->has_starttls = false;
			return;
		}
	}
	line_reader_compact(&s->reader, in);
}

static void
pop3_session_drained(void *arg, struct net_conn *c)
{
	struct pop3_session *s = arg;

	(void)c;
	if (s->stream.is_active) {
		stream_pump(s);
	} else if (s->is_output_full) {
		s->is_output_full = false;
		pop3_resume(s);
	}
}

static void
pop3_session_timeout(void *arg, struct net_conn *c)
{
	(void)arg;
	/* RFC 1939 §3: the autologout timer closes without UPDATE. */
	net_conn_printf(c, "-ERR Idle timeout, closing connection\r\n");
}

static void
pop3_session_shutdown(void *arg, struct net_conn *c)
{
	(void)arg;
	net_conn_printf(c, "-ERR [SYS/TEMP] Server shutting down\r\n");
}

static void
pop3_session_free(struct pop3_session *s)
{
	stream_end(s);
	if (s->holds_maildrop)
		maildrop_drop(s->ctx, s->id.account);
	auth_sasl_free(&s->sasl);
	free(s->user);
	free(s->msgs);
	free(s);
}

static void
pop3_session_close(void *arg)
{
	struct pop3_session *s = arg;

	/* A dropped connection never reaches UPDATE: nothing is deleted.
	 * A callback still holding s frees it. */
	if (s->is_waiting) {
		s->is_gone = true;
		s->conn = NULL;
		return;
	}
	pop3_session_free(s);
}

static void
pop3_session_refuse(struct net_conn *c, const char *reason)
{
	net_conn_printf(c, "-ERR [SYS/TEMP] %s\r\n", reason);
}

const struct net_session_ops pop3_session_ops = {
	.open = pop3_session_open,
	.input = pop3_session_input,
	.timeout = pop3_session_timeout,
	.shutdown = pop3_session_shutdown,
	.close = pop3_session_close,
	.drained = pop3_session_drained,
	.refuse = pop3_session_refuse,
};
