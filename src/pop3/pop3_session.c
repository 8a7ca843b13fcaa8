/*
 * pop3_session: POP3 (RFC 1939) with CAPA and response codes (RFC 2449,
 * RFC 3206), STLS (RFC 2595) and AUTH (RFC 5034) through the shared SASL
 * code. The maildrop is INBOX, seen as it was at login: numbers never
 * shift during a session, deletions wait for QUIT (the UPDATE state) and
 * are never applied when the connection just drops. RETR and TOP stream
 * the stored file with dot-stuffing, a piece at a time.
 */
#include "pop3/pop3.h"
#include "pop3/pop3_int.h"

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
	POP3_STATE_AUTHORIZATION = 1 << 0,
	POP3_STATE_TRANSACTION = 1 << 1,
	POP3_STATE_WAIT = 1 << 2,	/* auth, the store, or a stream */
	POP3_STATE_SASL = 1 << 3,	/* reading SASL responses */
	POP3_STATE_UPDATE = 1 << 4,
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
	struct net_conn *conn;
	struct event_base *base;
	struct pop3_ctx *ctx;
	const struct config *cfg;
	char sid[24];
	enum pop3_state state;
	struct line_reader reader;
	unsigned errors;
	bool has_starttls;
	char *user;		/* from USER */
	struct auth_exchange auth;	/* AUTH */
	struct auth_identity id;
	bool holds_maildrop;
	uint32_t uidvalidity;
	int64_t mailbox;
	uint32_t retention_days;
	struct pop3_msg *msgs;
	size_t nmsgs;
	struct pop3_stream stream;
};

/* A command: the states it is valid in and its handler, which gets the
 * argument text (NULL when there is none). */
struct pop3_cmd {
	const char *name;
	unsigned states;
	void (*run)(struct pop3_session *s, const char *arg);
};

static const char *
state_name(enum pop3_state st)
{
	switch (st) {
	case POP3_STATE_AUTHORIZATION: return "authorization";
	case POP3_STATE_TRANSACTION: return "transaction";
	case POP3_STATE_WAIT: return "wait";
	case POP3_STATE_SASL: return "sasl";
	case POP3_STATE_UPDATE: return "update";
	}
	return "?";
}

static void
pop3_set_state(struct pop3_session *s, enum pop3_state to)
{
	log_trace(s->sid, "pop3.state from=%s to=%s", state_name(s->state),
	    state_name(to));
	s->state = to;
}

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
			pop3_set_state(s, POP3_STATE_TRANSACTION);
			net_conn_resume(s->conn);
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
	pop3_set_state(s, POP3_STATE_WAIT);
	net_conn_pause(s->conn);
	stream_pump(s);
}

/* ---- Commands ---------------------------------------------------------- */

static void
cmd_capa(struct pop3_session *s, const char *arg)
{
	const char *mechs = s->ctx->auth ? auth_mechanisms(s->ctx->auth,
	    is_plain_ok(s)) : "";

	(void)arg;
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
cmd_stls(struct pop3_session *s, const char *arg)
{
	(void)arg;
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

/* Logged in and the maildrop taken: number the messages and say so. */
static void
login_finish(struct pop3_session *s)
{
	if (maildrop_load(s) < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try "
		    "again later");
		net_conn_close(s->conn);
		return;
	}
	pop3_set_state(s, POP3_STATE_TRANSACTION);
	net_conn_logged_in(s->conn);
	log_info(s->sid, "pop3.login user=<%s> messages=%zu", s->id.address,
	    s->nmsgs);
	pop3_reply(s, "+OK Logged in, %zu messages", s->nmsgs);
}

static void
retention_applied(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;

	(void)r;
	if (!net_conn_unwait(s->conn))
		return;
	login_finish(s);
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
		pop3_set_state(s, POP3_STATE_AUTHORIZATION);
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
		login_finish(s);
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
		    retention_applied, s) == 0) {
			net_conn_wait(s->conn);
			free(expired);
			store_mailbox_deinit(&mb);
			return;
		}
	}
	free(expired);
	store_mailbox_deinit(&mb);
	login_finish(s);
}

/* The answer to USER/PASS or AUTH. */
static void
login_result(struct pop3_session *s, enum auth_result result,
    const struct auth_identity *id)
{
	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
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
}

static void
on_login_done(void *arg, enum auth_result result,
    const struct auth_identity *id)
{
	struct pop3_session *s = arg;

	if (!net_conn_unwait(s->conn))
		return;
	login_result(s, result, id);
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
	if (auth_login(s->ctx->auth, s->user, arg ? arg : "", AUTH_PROTO_POP3,
	    net_conn_peer(s->conn), s->sid, s->base, on_login_done, s) == 0) {
		pop3_set_state(s, POP3_STATE_WAIT);
		net_conn_wait(s->conn);
	} else {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary failure, try again "
		    "later");
	}
	free(s->user);
	s->user = NULL;
}

static void
on_sasl_challenge(void *arg, const char *b64)
{
	struct pop3_session *s = arg;

	pop3_set_state(s, POP3_STATE_SASL);
	pop3_reply(s, "+ %s", b64);
}

static void
on_sasl_wait(void *arg)
{
	struct pop3_session *s = arg;

	pop3_set_state(s, POP3_STATE_WAIT);
	net_conn_wait(s->conn);
}

static bool
on_sasl_resumed(void *arg)
{
	struct pop3_session *s = arg;

	return net_conn_unwait(s->conn);
}

static void
on_sasl_end(void *arg, enum auth_exchange_end how, enum auth_result result,
    const struct auth_identity *id)
{
	struct pop3_session *s = arg;

	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
	switch (how) {
	case AUTH_X_DONE:
		login_result(s, result, id);
		return;
	case AUTH_X_UNKNOWN_MECH:
		pop3_error(s, "-ERR Unknown mechanism");
		return;
	case AUTH_X_NEEDS_TLS:
		pop3_error(s, "-ERR [AUTH] No authentication before TLS: use "
		    "STLS, or port 995");
		return;
	case AUTH_X_MALFORMED:
		pop3_error(s, "-ERR Cannot decode the response");
		return;
	case AUTH_X_CANCELLED:
		pop3_error(s, "-ERR Authentication cancelled");
		return;
	}
}

static const struct auth_exchange_ops pop3_auth_ops = {
	.challenge = on_sasl_challenge,
	.wait = on_sasl_wait,
	.resumed = on_sasl_resumed,
	.end = on_sasl_end,
};

/* RFC 5034 */
static void
cmd_auth(struct pop3_session *s, const char *arg)
{
	const char *sp;
	struct auth_exchange_args a = {
		.auth = s->ctx->auth,
		.is_plain_ok = is_plain_ok(s),
		.proto = AUTH_PROTO_POP3,
		.peer = net_conn_peer(s->conn),
		.sid = s->sid,
		.base = s->base,
	};

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
	auth_exchange_start(&s->auth, &a, arg, sp ? (size_t)(sp - arg) :
	    strlen(arg), sp ? sp + 1 : NULL, sp ? strlen(sp + 1) : 0);
}

static void
cmd_stat(struct pop3_session *s, const char *arg)
{
	size_t n = 0;
	uint64_t size = 0;

	(void)arg;
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

/* The end of UPDATE: the last reply, then the connection closes. */
static void
update_reply(struct pop3_session *s, const struct store_change_result *r)
{
	size_t deleted = 0;

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
on_update_done(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;

	if (!net_conn_unwait(s->conn))
		return;
	update_reply(s, r);
}

/* UPDATE, second step: expunge what DELE marked. */
static void
update_expunge(struct pop3_session *s)
{
	uint32_t *uids;
	size_t n = 0;

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
			net_conn_wait(s->conn);
			free(uids);
			return;
		}
		free(uids);
		update_reply(s, &(struct store_change_result){
		    .err = STORE_TEMP });
		return;
	}
	free(uids);
	update_reply(s, NULL);
}

static void
retrieved_noted(void *arg, const struct store_change_result *r)
{
	struct pop3_session *s = arg;

	/* QUIT was given: deletions happen even if the client is gone
	 * (the session stays until the last awaited callback). */
	(void)r;
	(void)net_conn_unwait(s->conn);
	update_expunge(s);
}

/* RFC 1939 §6: the UPDATE state, only after QUIT. */
static void
cmd_quit_update(struct pop3_session *s)
{
	uint32_t *uids = xcalloc(s->nmsgs ? s->nmsgs : 1, sizeof(*uids));
	size_t n = 0;

	pop3_set_state(s, POP3_STATE_UPDATE);
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
			net_conn_wait(s->conn);
			free(uids);
			return;
		}
	}
	free(uids);
	update_expunge(s);
}

static void
cmd_quit(struct pop3_session *s, const char *arg)
{
	(void)arg;
	if (s->state == POP3_STATE_TRANSACTION) {
		cmd_quit_update(s);
		return;
	}
	pop3_reply(s, "+OK postern signing off");
	net_conn_close(s->conn);
}

static void
cmd_noop(struct pop3_session *s, const char *arg)
{
	(void)arg;
	pop3_reply(s, "+OK");
}

static void
cmd_list_sizes(struct pop3_session *s, const char *arg)
{
	cmd_list(s, arg, false);
}

static void
cmd_uidl(struct pop3_session *s, const char *arg)
{
	cmd_list(s, arg, true);
}

static void
cmd_retr(struct pop3_session *s, const char *arg)
{
	struct pop3_msg *m = msg_arg(s, arg);

	if (m != NULL) {
		m->is_retrieved = true;
		stream_start(s, m, false, 0);
	}
}

static void
cmd_dele(struct pop3_session *s, const char *arg)
{
	struct pop3_msg *m = msg_arg(s, arg);

	if (m != NULL) {
		m->is_deleted = true;
		pop3_reply(s, "+OK Message %zu deleted",
		    (size_t)(m - s->msgs) + 1);
	}
}

static void
cmd_rset(struct pop3_session *s, const char *arg)
{
	(void)arg;
	for (size_t i = 0; i < s->nmsgs; i++)
		s->msgs[i].is_deleted = false;
	pop3_reply(s, "+OK");
}

#define AUTHZ POP3_STATE_AUTHORIZATION
#define TRANS POP3_STATE_TRANSACTION

static const struct pop3_cmd commands[] = {
	{ "CAPA", AUTHZ | TRANS, cmd_capa },
	{ "QUIT", AUTHZ | TRANS, cmd_quit },
	{ "STLS", AUTHZ, cmd_stls },
	{ "USER", AUTHZ, cmd_user },
	{ "PASS", AUTHZ, cmd_pass },
	{ "AUTH", AUTHZ, cmd_auth },
	{ "NOOP", TRANS, cmd_noop },
	{ "STAT", TRANS, cmd_stat },
	{ "LIST", TRANS, cmd_list_sizes },
	{ "UIDL", TRANS, cmd_uidl },
	{ "RETR", TRANS, cmd_retr },
	{ "TOP", TRANS, cmd_top },
	{ "DELE", TRANS, cmd_dele },
	{ "RSET", TRANS, cmd_rset },
};

/* The command of a parsed line, or NULL. */
static const struct pop3_cmd *
cmd_find(const struct pop3_line *pl)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcmp(pl->keyword, commands[i].name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
pop3_line(struct pop3_session *s, char *line, size_t len)
{
	const struct pop3_cmd *cmd = NULL;
	struct pop3_line pl;

	if (s->state == POP3_STATE_SASL) {
		auth_exchange_line(&s->auth, line, len);
		return;
	}
	if (pop3_line_parse(line, len, &pl) == 0)
		cmd = cmd_find(&pl);
	/* The line is a NUL-terminated copy: the argument runs to its end. */
	if (cmd != NULL && (cmd->states & s->state))
		cmd->run(s, pl.arg);
	else if (s->state == POP3_STATE_AUTHORIZATION)
		pop3_error(s, "-ERR Unknown command, or not before login");
	else
		pop3_error(s, "-ERR Unknown command");
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
	s->state = POP3_STATE_AUTHORIZATION;
	auth_exchange_init(&s->auth, &pop3_auth_ops, s);
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

	/* is_net_conn_feeding() also stops a client that pipelines and
	 * never reads from making us queue its replies without bound. */
	while (is_net_conn_feeding(c)) {
		enum parse_rc rc;
		char *copy;

		rc = line_reader_next(&s->reader, in, &line, &len);
		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			pop3_error(s, "-ERR Line too long");
			continue;
		}
		/* Commands take NUL-terminated arguments: a NUL inside a
		 * line would cut it short (RFC 1939 §3 has no use for one). */
		if (memchr(line, '\0', len) != NULL) {
			pop3_error(s, "-ERR A command line may not hold a NUL "
			    "byte");
			continue;
		}
		copy = xstrndup(line, len);
		pop3_line(s, copy, len);
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
	if (s->stream.is_active)
		stream_pump(s);
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

/* net calls this once the connection is gone and no callback is awaited
 * (net.h): nothing else frees a session. A dropped connection never
 * reaches UPDATE: nothing is deleted. */
static void
pop3_session_close(void *arg)
{
	struct pop3_session *s = arg;

	stream_end(s);
	if (s->holds_maildrop)
		maildrop_drop(s->ctx, s->id.account);
	auth_exchange_deinit(&s->auth);
	free(s->user);
	free(s->msgs);
	free(s);
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
