/*
 * imap_session: one IMAP connection (RFC 9051, and RFC 3501 for clients
 * that do not ENABLE IMAP4rev2). Reads commands through the incremental
 * parser, dispatches them by state, and holds the replies every command
 * shares; the commands of the not-authenticated state (LOGIN,
 * AUTHENTICATE, STARTTLS) and the small ones (CAPABILITY, NOOP, LOGOUT,
 * ENABLE, ID, IDLE, CLOSE, UNSELECT) live here too. See imap_int.h for how
 * a command runs and ends.
 */
#include "imap/imap_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/mutf7.h"
#include "lib/util.h"

#define IMAP_MAX_ERRORS 20

/* Before login, command lines stay within [limits] line_length (4 KiB by
 * default): a connection nobody has authenticated holds little. ID is the
 * exception. RFC 2971 §3.1 lets it come in any state, and clients send it
 * first thing to say who they are (Dovecot's imaptest does). Its largest
 * form is 30 field-value pairs, fields of up to 30 octets and values of
 * up to 1,024 (§3.3), quoted, about 31,800 octets on one line. So an ID
 * line may reach 32 KiB before login; any other command's line still ends
 * at line_length, and an ID over 30 pairs is BAD (imap_cmd_id). The bound
 * is per connection, and max_connections_per_ip bounds those. After login
 * imap_line_length (64 KiB) covers ID anyway (RFC 9051 §4: at least
 * 8,192). */
#define IMAP_ID_LINE_MAX (32 * 1024)
/* Quoted strings longer than this go out as literals. */
#define QUOTED_MAX 1024

enum {
	ST_NOT_AUTH = 1 << IMAP_STATE_NOT_AUTH,
	ST_AUTH = 1 << IMAP_STATE_AUTH,
	ST_SELECTED = 1 << IMAP_STATE_SELECTED,
	ST_ANY = ST_NOT_AUTH | ST_AUTH | ST_SELECTED,
	ST_LOGGED_IN = ST_AUTH | ST_SELECTED,
};

/* One row per command: the states it is valid in, whether it has a UID
 * form, and its handler. */
struct imap_cmd_def {
	const char *name;
	unsigned states;
	unsigned flags;
	imap_handler *run;
};

enum {
	CMD_UID = 1 << 0,	/* has a UID form */
	CMD_NO_ARGS = 1 << 1,	/* takes no arguments */
};

static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", ST_ANY, CMD_NO_ARGS, imap_cmd_capability },
	{ "NOOP", ST_ANY, CMD_NO_ARGS, imap_cmd_noop },
	{ "LOGOUT", ST_ANY, CMD_NO_ARGS, imap_cmd_logout },
	{ "ID", ST_ANY, 0, imap_cmd_id },
	{ "STARTTLS", ST_NOT_AUTH, CMD_NO_ARGS, imap_cmd_starttls },
	{ "COMPRESS", ST_LOGGED_IN, 0, imap_cmd_compress },
	{ "LOGIN", ST_NOT_AUTH, 0, imap_cmd_login },
	{ "AUTHENTICATE", ST_NOT_AUTH, 0, imap_cmd_authenticate },
	{ "ENABLE", ST_AUTH | ST_SELECTED, 0, imap_cmd_enable },
	{ "SELECT", ST_LOGGED_IN, 0, imap_cmd_select },
	{ "EXAMINE", ST_LOGGED_IN, 0, imap_cmd_select },
	{ "CREATE", ST_LOGGED_IN, 0, imap_cmd_create },
	{ "DELETE", ST_LOGGED_IN, 0, imap_cmd_delete },
	{ "RENAME", ST_LOGGED_IN, 0, imap_cmd_rename },
	{ "SUBSCRIBE", ST_LOGGED_IN, 0, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", ST_LOGGED_IN, 0, imap_cmd_subscribe },
	{ "LIST", ST_LOGGED_IN, 0, imap_cmd_list },
	{ "LSUB", ST_LOGGED_IN, 0, imap_cmd_list },
	{ "NAMESPACE", ST_LOGGED_IN, CMD_NO_ARGS, imap_cmd_namespace },
	{ "STATUS", ST_LOGGED_IN, 0, imap_cmd_status },
	{ "APPEND", ST_LOGGED_IN, 0, imap_cmd_append },
	{ "IDLE", ST_LOGGED_IN, CMD_NO_ARGS, imap_cmd_idle },
	{ "NOTIFY", ST_LOGGED_IN, 0, imap_cmd_notify },
	{ "CHECK", ST_SELECTED, CMD_NO_ARGS, imap_cmd_noop },
	{ "CLOSE", ST_SELECTED, CMD_NO_ARGS, imap_cmd_close },
	{ "UNSELECT", ST_SELECTED, CMD_NO_ARGS, imap_cmd_unselect },
	{ "EXPUNGE", ST_SELECTED, CMD_UID, imap_cmd_expunge },
	{ "SEARCH", ST_SELECTED, CMD_UID, imap_cmd_search },
	{ "SORT", ST_SELECTED, CMD_UID, imap_cmd_sort },
	{ "THREAD", ST_SELECTED, CMD_UID, imap_cmd_thread },
	{ "FETCH", ST_SELECTED, CMD_UID, imap_cmd_fetch },
	{ "STORE", ST_SELECTED, CMD_UID, imap_cmd_store },
	{ "COPY", ST_SELECTED, CMD_UID, imap_cmd_copy },
	{ "MOVE", ST_SELECTED, CMD_UID, imap_cmd_copy },
	{ "GETMETADATA", ST_LOGGED_IN, 0, imap_cmd_getmetadata },
	{ "SETMETADATA", ST_LOGGED_IN, 0, imap_cmd_setmetadata },
	{ "GETQUOTA", ST_LOGGED_IN, 0, imap_cmd_getquota },
	{ "GETQUOTAROOT", ST_LOGGED_IN, 0, imap_cmd_getquotaroot },
	{ "SETQUOTA", ST_LOGGED_IN, 0, imap_cmd_setquota },
	{ "REPLACE", ST_SELECTED, CMD_UID, imap_cmd_replace },
	{ "MYRIGHTS", ST_LOGGED_IN, 0, imap_cmd_myrights },
	{ "GETACL", ST_LOGGED_IN, 0, imap_cmd_getacl },
	{ "LISTRIGHTS", ST_LOGGED_IN, 0, imap_cmd_listrights },
	{ "SETACL", ST_LOGGED_IN, 0, imap_cmd_setacl },
	{ "DELETEACL", ST_LOGGED_IN, 0, imap_cmd_setacl },
};


/* ---- Output ------------------------------------------------------------ */

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	net_conn_write(s->conn, data, len);
}

void
imap_printf(struct imap_session *s, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("imap_printf: bad format");
	if ((size_t)n < sizeof(small)) {
		net_conn_write(s->conn, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);

	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	net_conn_write(s->conn, big, (size_t)n);
	free(big);
}

static bool
is_quotable(const struct imap_session *s, const char *str, size_t len)
{
	if (len >= QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80 && !s->is_utf8)
			return false;
	}
	return true;
}

void
imap_write_string(struct imap_session *s, const char *str, size_t len)
{
	if (!is_quotable(s, str, len)) {
		imap_printf(s, "{%zu}\r\n", len);
		imap_write(s, str, len);
		return;
	}
	char *out = xmalloc(2 * len + 3);
	size_t o = 0;

	out[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			out[o++] = '\\';
		out[o++] = str[i];
	}
	out[o++] = '"';
	imap_write(s, out, o);
	free(out);
}

void
imap_write_nstring(struct imap_session *s, const char *str, size_t len)
{
	if (str == NULL)
		imap_write(s, "NIL", 3);
	else
		imap_write_string(s, str, len);
}

void
imap_write_mailbox(struct imap_session *s, const char *name)
{
	if (s->is_utf8) {
		imap_write_string(s, name, strlen(name));
		return;
	}
	char *enc = mutf7_encode(name);

	if (enc == NULL)
		enc = xstrdup(name);	/* not UTF-8: sent as stored */
	imap_write_string(s, enc, strlen(enc));
	free(enc);
}

void
imap_write_flags(struct imap_session *s, uint32_t flags,
    const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ STORE_FLAG_ANSWERED, "\\Answered" },
		{ STORE_FLAG_FLAGGED, "\\Flagged" },
		{ STORE_FLAG_DELETED, "\\Deleted" },
		{ STORE_FLAG_SEEN, "\\Seen" },
		{ STORE_FLAG_DRAFT, "\\Draft" },
		{ IMAP_FLAG_RECENT, "\\Recent" },
	};
	bool is_first = true;

	imap_write(s, "(", 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (flags & names[i].bit) {
			imap_printf(s, "%s%s", is_first ? "" : " ",
			    names[i].name);
			is_first = false;
		}
	}
	if (keywords != NULL && *keywords != '\0')
		imap_printf(s, "%s%s", is_first ? "" : " ", keywords);
	imap_write(s, ")", 1);
}

/* ---- Running commands -------------------------------------------------- */

static void
job_end(struct imap_session *s)
{
	if (s->job_free != NULL && s->job != NULL)
		s->job_free(s->job);
	s->job = NULL;
	s->job_free = NULL;
	s->job_drained = NULL;
}

/* RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH (by
 * sequence number: the UID forms may hear them); SORT and THREAD answer
 * with sequence numbers too. */
static bool
may_expunge(const struct imap_cmd *cmd)
{
	if (cmd == NULL || cmd->is_uid)
		return true;
	return strcmp(cmd->name, "FETCH") != 0 &&
	    strcmp(cmd->name, "STORE") != 0 &&
	    strcmp(cmd->name, "SEARCH") != 0 &&
	    strcmp(cmd->name, "SORT") != 0 && strcmp(cmd->name, "THREAD") != 0;
}

void
imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
{
	char *text;
	va_list ap;
	const char *tag = s->cmd != NULL ? s->cmd->tag : "*";

	/* Response codes such as COPYUID may run long: no fixed buffer. */
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		panic("imap_done: out of memory");
	va_end(ap);
	imap_notify_flush(s);
	if (s->view != NULL && s->state == IMAP_STATE_SELECTED)
		imap_view_sync(s, may_expunge(s->cmd), false);
	imap_printf(s, "%s %s %s\r\n", tag, status, text);
	free(text);
	job_end(s);
	imap_cmd_free(&s->cmd);
	if (strcmp(status, "BAD") == 0 && ++s->errors >= IMAP_MAX_ERRORS) {
		imap_printf(s, "* BYE Too many errors, closing connection\r\n");
		net_conn_close(s->conn);
		return;
	}
	net_conn_resume(s->conn);
}

void
imap_wait(struct imap_session *s)
{
	net_conn_wait(s->conn);
}

bool
imap_resumed(struct imap_session *s)
{
	return net_conn_unwait(s->conn);
}

void
imap_wait_cancel(struct imap_session *s)
{
	(void)net_conn_unwait(s->conn);
}

/* ---- Capabilities ------------------------------------------------------ */

static bool
is_plain_ok(const struct imap_session *s)
{
	return is_net_conn_tls(s->conn) || s->cfg->allow_plaintext_auth;
}

static bool
can_starttls(const struct imap_session *s)
{
	return !is_net_conn_tls(s->conn) &&
	    net_conn_listener(s->conn)->tls == CONFIG_TLS_STARTTLS;
}

/* Writes the capability list (no line end). Before login: how to log in
 * (RFC 9051 §6.2.1 LOGINDISABLED before TLS on 143); after: what the
 * session can do. */
static void
write_capabilities(struct imap_session *s)
{
	imap_printf(s, "IMAP4rev2 IMAP4rev1 ID ENABLE IDLE SASL-IR LITERAL+");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		char *mechs = xstrdup(s->ctx->auth != NULL ?
		    auth_mechanisms(s->ctx->auth, is_plain_ok(s)) : "");
		char *save = NULL;

		if (can_starttls(s))
			imap_printf(s, " STARTTLS");
		if (!is_plain_ok(s))
			imap_printf(s, " LOGINDISABLED");
		for (char *m = strtok_r(mechs, " ", &save); m != NULL;
		    m = strtok_r(NULL, " ", &save))
			imap_printf(s, " AUTH=%s", m);
		free(mechs);
		return;
	}
	imap_printf(s, " NAMESPACE UIDPLUS UNSELECT MOVE CHILDREN "
	    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS "
	    "ESEARCH SEARCHRES BINARY STATUS=SIZE CONDSTORE QRESYNC "
	    "UTF8=ACCEPT");
	imap_printf(s, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE");
	imap_printf(s, " METADATA METADATA-SERVER");
	/* RFC 4314 §2.1: every right beyond RFC 2086's. */
	imap_printf(s, " ACL RIGHTS=texk");
	imap_printf(s, " OBJECTID SAVEDATE PREVIEW MULTIAPPEND REPLACE "
	    "UIDONLY NOTIFY");
	/* RFC 7889: the largest APPEND literal, the same for every mailbox
	 * (STATUS APPENDLIMIT repeats it). */
	imap_printf(s, " APPENDLIMIT=%llu",
	    (unsigned long long)s->cfg->imap_literal_max);
	if (!is_net_conn_compressed(s->conn))
		imap_printf(s, " COMPRESS=DEFLATE");
	imap_printf(s, " SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT "
	    "THREAD=REFERENCES");
}

void
imap_cmd_capability(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	imap_printf(s, "* CAPABILITY ");
	write_capabilities(s);
	imap_printf(s, "\r\n");
	imap_done(s, "OK", "CAPABILITY completed");
}

void
imap_cmd_noop(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	/* A client polls with NOOP: look even if no notification came yet
	 * (it travels through the event loop). */
	if (s->view != NULL)
		s->view->is_stale = true;
	imap_done(s, "OK", "%s completed", s->cmd->name);
}

void
imap_cmd_logout(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	imap_printf(s, "* BYE postern logging out\r\n");
	imap_printf(s, "%s OK LOGOUT completed\r\n", s->cmd->tag);
	imap_cmd_free(&s->cmd);
	net_conn_close(s->conn);
}

void
imap_cmd_starttls(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	if (!can_starttls(s)) {
		imap_done(s, "BAD", "TLS is already active or not offered "
		    "here");
		return;
	}
	imap_printf(s, "%s OK Begin TLS negotiation now\r\n", s->cmd->tag);
	imap_cmd_free(&s->cmd);
	if (net_conn_starttls(s->conn) < 0) {
		net_conn_close(s->conn);
		return;
	}
	/* RFC 9051 §6.2.1: what the client sent behind STARTTLS is thrown
	 * away with the buffer; the parser forgets its offset into it. */
	imap_parser_reset(&s->parser);
	s->is_stream_new = true;
}

/* RFC 4978 §3: only after login here, so that a client must log in
 * before it can make us hold a compressor. */
void
imap_cmd_compress(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *a = cmd->nargs == 1 ? &cmd->args[0] : NULL;

	if (a == NULL || a->kind != IMAP_ARG_ATOM ||
	    strcasecmp(a->str, "DEFLATE") != 0) {
		imap_done(s, "BAD", "COMPRESS takes one argument: DEFLATE");
		return;
	}
	if (is_net_conn_compressed(s->conn)) {
		imap_done(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already "
		    "active");
		return;
	}
	/* The OK is the last uncompressed byte; compression starts right
	 * after its CRLF, both ways. */
	imap_printf(s, "%s OK DEFLATE active\r\n", s->cmd->tag);
	imap_cmd_free(&s->cmd);
	if (net_conn_compress(s->conn) < 0) {
		net_conn_close(s->conn);
		return;
	}
	imap_parser_reset(&s->parser);
	s->is_stream_new = true;
}

void
imap_cmd_id(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *a = cmd->nargs == 1 ? &cmd->args[0] : NULL;
	bool is_ok = a != NULL && (a->kind == IMAP_ARG_NIL ||
	    (a->kind == IMAP_ARG_LIST && a->len % 2 == 0 && a->len <= 60));

	/* RFC 2971 §3.1: NIL, or at most 30 field-value pairs of strings
	 * (a value may be NIL). */
	for (size_t i = 0; is_ok && a->kind == IMAP_ARG_LIST && i < a->len;
	    i++) {
		const char *str;
		size_t len;

		is_ok = i % 2 == 0 ?
		    imap_arg_string(&a->list[i], &str, &len) :
		    imap_arg_nstring(&a->list[i], &str, &len);
	}
	if (!is_ok) {
		imap_done(s, "BAD", "ID takes NIL or a list of field-value "
		    "pairs");
		return;
	}
	imap_printf(s, "* ID (\"name\" \"postern\" \"vendor\" \"postern\")"
	    "\r\n");
	imap_done(s, "OK", "ID completed");
}

/* RFC 7162 §3.1: enabling CONDSTORE with a mailbox selected tells the
 * client its HIGHESTMODSEQ at once, as SEARCH MODSEQ does. */
static void
condstore_enable(struct imap_session *s)
{
	if (!s->is_condstore && s->view != NULL)
		imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		    (unsigned long long)s->view->modseq);
	s->is_condstore = true;
}

void
imap_cmd_enable(struct imap_session *s, const struct imap_cmd *cmd)
{
	char enabled[128] = "";

	if (cmd->nargs == 0) {
		imap_done(s, "BAD", "ENABLE needs at least one capability");
		return;
	}
	for (size_t i = 0; i < cmd->nargs; i++) {
		const struct imap_arg *a = &cmd->args[i];
		const char *name = NULL;

		if (a->kind != IMAP_ARG_ATOM) {
			imap_done(s, "BAD", "ENABLE takes capability names");
			return;
		}
		/* RFC 5161 §3: only capabilities not enabled before are
		 * listed; unknown ones are ignored. */
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !s->is_rev2) {
			s->is_rev2 = true;
			s->is_utf8 = true;
			name = "IMAP4rev2";
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 &&
		    !s->is_utf8) {
			s->is_utf8 = true;
			name = "UTF8=ACCEPT";
		} else if (strcasecmp(a->str, "CONDSTORE") == 0 &&
		    !s->is_condstore) {
			condstore_enable(s);
			name = "CONDSTORE";
		} else if (strcasecmp(a->str, "UIDONLY") == 0 &&
		    !s->is_uidonly) {
			/* RFC 9586 §3: from now on no sequence numbers,
			 * either way. */
			s->is_uidonly = true;
			name = "UIDONLY";
		} else if (strcasecmp(a->str, "QRESYNC") == 0 &&
		    !s->is_qresync) {
			/* RFC 7162 §3.2.3: QRESYNC implies CONDSTORE. */
			s->is_qresync = true;
			condstore_enable(s);
			name = "QRESYNC";
		}
		if (name != NULL && strlen(enabled) + strlen(name) + 2 <
		    sizeof(enabled)) {
			strcat(enabled, " ");
			strcat(enabled, name);
		}
	}
	s->parser.is_utf8 = s->is_utf8;
	imap_printf(s, "* ENABLED%s\r\n", enabled);
	imap_done(s, "OK", "ENABLE completed");
}

/* RFC 2177. The session answers "+ idling" and waits for DONE; changes to
 * the selected mailbox are sent as they happen (imap_view.c). */
void
imap_cmd_idle(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	/* The 1 KiB arena of "tag IDLE" would stay as long as the client
	 * idles: 8 % of what an idle session holds. */
	imap_cmd_shrink(&s->cmd);
	s->is_idle = true;
	metrics_idle_add(1);
	imap_printf(s, "+ idling\r\n");
	imap_notify_flush(s);
	if (s->view != NULL)
		imap_view_sync(s, true, true);
}

static void
idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->is_idle = false;
	metrics_idle_add(-1);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_done(s, "OK", "IDLE terminated");
	else
		imap_done(s, "BAD", "Expected DONE to end IDLE");
}

static void
close_expunged(void *arg, const struct store_change_result *r)
{
	struct imap_session *s = arg;

	if (!imap_resumed(s))
		return;
	imap_view_close(s);
	s->state = IMAP_STATE_AUTH;
	if (r->err != STORE_OK) {
		imap_done(s, "NO", "[UNAVAILABLE] Mailbox closed, but deleted "
		    "messages could not be removed: %s",
		    store_err_text(r->err));
		return;
	}
	imap_done(s, "OK", "CLOSE completed");
}

/* RFC 9051 §6.4.1: CLOSE expunges \Deleted messages silently (unless the
 * mailbox is read-only) and leaves the selected state. The flags are the
 * store's: another session may have set or cleared \Deleted since this
 * one last looked. */
void
imap_cmd_close(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	const struct store_cond deleted = {
		.kind = STORE_COND_FLAG_SET,
		.n = STORE_FLAG_DELETED,
	};
	uint32_t *uids = NULL;
	size_t n = 0;
	enum store_err err;

	(void)cmd;
	/* Without "e" CLOSE expunges nothing (RFC 4314 §4). */
	if (!v->is_readonly && (v->rights & STORE_ACL_EXPUNGE) &&
	    store_search(s->ctx->store, v->mailbox,
	    &deleted, &uids, &n, &err) < 0) {
		imap_done(s, "NO", "[UNAVAILABLE] Cannot close the mailbox: "
		    "%s, try again later", store_err_text(err));
		return;
	}
	if (n > 0) {
		struct store_change c = {
			.mailbox = v->mailbox,
			.uids = uids,
			.nuids = n,
			.kind = STORE_CHANGE_EXPUNGE,
		};

		imap_wait(s);
		if (store_change_submit(s->ctx->store, &c, s->base,
		    close_expunged, s) == 0) {
			free(uids);
			return;
		}
		imap_wait_cancel(s);
	}
	free(uids);
	imap_view_close(s);
	s->state = IMAP_STATE_AUTH;
	imap_done(s, "OK", "CLOSE completed");
}

void
imap_cmd_unselect(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	imap_view_close(s);
	s->state = IMAP_STATE_AUTH;
	imap_done(s, "OK", "UNSELECT completed");
}

/* ---- Logging in -------------------------------------------------------- */

/* The parser's spool_open: a large literal of APPEND or REPLACE (the
 * message) goes to a file in the data directory as it arrives, so that
 * memory per APPEND stays about one network read whatever the message's
 * size; other commands' literals stay in memory (their arguments are read
 * as strings, and imap_literal_max bounds them). */
static int
literal_spool_open(void *arg, const char *cmd_name, int *errno_out)
{
	struct imap_session *s = arg;
	enum store_err err;
	int fd;

	if (strcmp(cmd_name, "APPEND") != 0 && strcmp(cmd_name, "REPLACE") != 0)
		return -1;
	fd = store_spool_open(s->ctx->store, &err);
	if (fd < 0) {
		/* The literal is dropped as it comes and APPEND answers NO
		 * (never held in memory instead: a full disk is no reason to
		 * give up the bound). */
		*errno_out = err == STORE_NO_SPACE ? ENOSPC : EIO;
		log_error(s->sid, "imap.literal_spool error=\"%s\"",
		    store_err_text(err));
	}
	return fd;
}

/* The parser's literal_check: SETMETADATA's literals are entry names and
 * values, which we take only up to imap_metadata_size (RFC 5464 §4.3,
 * MAXSIZE), so a larger one is dropped as it comes, and all of one
 * command's together stay within imap_literal_spool (or one value). Held
 * whole up to imap_literal_max (50 MB) before the MAXSIZE check, each of
 * a user's connections could make us allocate that much; dropping also
 * serves {n+}, which RFC 7888 §4 lets us read and discard. The command
 * answers NO [METADATA MAXSIZE] or NO [LIMIT]. */
/* Any other command but APPEND and REPLACE (whose literals the parser
 * spools past imap_literal_spool) holds its literals in memory: all of
 * them together within imap_literal_spool, or the command is refused
 * with BAD [TOOBIG] as soon as one is announced (a {n+} read and
 * dropped). Before, SEARCH, SELECT, NOTIFY or ID could each hold
 * imap_literal_max (50 MB) per connection. */
static int
literal_check(void *arg, const char *cmd_name, uint64_t n, uint64_t total)
{
	struct imap_session *s = arg;
	uint64_t one = s->cfg->imap_metadata_size;
	uint64_t all = s->cfg->imap_literal_spool;

	if (strcmp(cmd_name, "APPEND") == 0 || strcmp(cmd_name, "REPLACE") == 0)
		return 0;
	if (strcmp(cmd_name, "SETMETADATA") != 0)
		return total > all || n > all - total ? IMAP_LITERAL_REFUSE : 0;
	if (one < STORE_METADATA_NAME_MAX)
		one = STORE_METADATA_NAME_MAX;
	if (all < one)
		all = one;
	if (n > one)
		return EFBIG;
	if (total > all || n > all - total)
		return E2BIG;
	return 0;
}

/* The answer to LOGIN or AUTHENTICATE. */
static void
login_result(struct imap_session *s, enum auth_result result,
    const struct auth_identity *id)
{
	log_info(s->sid, "imap.login user=<%s> result=%s",
	    id != NULL ? id->address : "", auth_result_name(result));
	/* RFC 5530 response codes: the client learns whether to ask for the
	 * password again (AUTHENTICATIONFAILED) or to try later. */
	switch (result) {
	case AUTH_OK:
		s->id = *id;
		s->state = IMAP_STATE_AUTH;
		net_conn_logged_in(s->conn);
		/* RFC 7888 LITERAL+: after login a {n+} may be as large as a
		 * synchronizing literal. */
		s->parser.literal_max = s->cfg->imap_literal_max;
		s->parser.literal_plus_max = s->cfg->imap_literal_max;
		/* RFC 9051 §4: clients send long lines (ID, SEARCH, UID
		 * sets); before login line_length keeps them short. */
		s->parser.line_max = s->cfg->imap_line_length;
		s->parser.id_line_max = 0;
		s->parser.spool_min = s->cfg->imap_literal_spool;
		s->parser.spool_open = literal_spool_open;
		s->parser.literal_check = literal_check;
		s->parser.spool_arg = s;
		imap_printf(s, "%s OK [CAPABILITY ", s->cmd->tag);
		write_capabilities(s);
		imap_printf(s, "] Logged in\r\n");
		imap_cmd_free(&s->cmd);
		net_conn_resume(s->conn);
		return;
	case AUTH_PROTO_DISABLED:
		imap_done(s, "NO", "[UNAVAILABLE] IMAP access is disabled for "
		    "this account");
		return;
	case AUTH_DISABLED:
		imap_done(s, "NO", "[UNAVAILABLE] This account is disabled");
		return;
	case AUTH_LOCKED:
		imap_done(s, "NO", "[UNAVAILABLE] Account temporarily locked "
		    "after too many failed logins, try again later");
		return;
	case AUTH_TEMP:
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	default:
		imap_done(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		    "failed");
		return;
	}
}

static void
on_login_done(void *arg, enum auth_result result,
    const struct auth_identity *id)
{
	struct imap_session *s = arg;

	if (!imap_resumed(s))
		return;
	login_result(s, result, id);
}

void
imap_cmd_login(struct imap_session *s, const struct imap_cmd *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;
	int rc;

	if (cmd->nargs != 2 || !imap_arg_astring(&cmd->args[0], &user, &ulen)
	    || !imap_arg_astring(&cmd->args[1], &pass, &plen)) {
		imap_done(s, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!is_plain_ok(s) || s->ctx->auth == NULL) {
		imap_done(s, "NO", "[PRIVACYREQUIRED] Plaintext login is only "
		    "allowed over TLS: use STARTTLS, or port 993");
		return;
	}
	if (ulen > 255 || strlen(user) != ulen || strlen(pass) != plen) {
		imap_done(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		    "failed");
		return;
	}
	imap_wait(s);
	rc = auth_login(s->ctx->auth, user, pass, AUTH_PROTO_IMAP,
	    net_conn_peer(s->conn), s->sid, s->base, on_login_done, s);
	/* auth_login took a copy; the command's own goes now. */
	secret_wipe((char *)pass, plen);
	if (rc < 0) {
		imap_wait_cancel(s);
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
	}
}

static void
on_sasl_challenge(void *arg, const char *b64)
{
	struct imap_session *s = arg;

	imap_printf(s, "+ %s\r\n", b64);
}

static void
on_sasl_wait(void *arg)
{
	imap_wait(arg);
}

static bool
on_sasl_resumed(void *arg)
{
	return imap_resumed(arg);
}

static void
on_sasl_end(void *arg, enum auth_exchange_end how, enum auth_result result,
    const struct auth_identity *id)
{
	struct imap_session *s = arg;

	switch (how) {
	case AUTH_X_DONE:
		login_result(s, result, id);
		return;
	case AUTH_X_UNKNOWN_MECH:
		imap_done(s, "NO", "Unknown authentication mechanism");
		return;
	case AUTH_X_NEEDS_TLS:
		imap_done(s, "NO", "[PRIVACYREQUIRED] No authentication "
		    "before TLS: use STARTTLS, or port 993");
		return;
	case AUTH_X_MALFORMED:
		imap_done(s, "BAD", "Cannot decode the authentication "
		    "response");
		return;
	case AUTH_X_CANCELLED:
		imap_done(s, "BAD", "Authentication cancelled");
		return;
	}
}

static const struct auth_exchange_ops imap_auth_ops = {
	.challenge = on_sasl_challenge,
	.wait = on_sasl_wait,
	.resumed = on_sasl_resumed,
	.end = on_sasl_end,
};

/* RFC 9051 §6.2.2 with SASL-IR (RFC 4959). */
void
imap_cmd_authenticate(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct auth_exchange_args a = {
		.auth = s->ctx->auth,
		.is_plain_ok = is_plain_ok(s),
		.proto = AUTH_PROTO_IMAP,
		.peer = net_conn_peer(s->conn),
		.sid = s->sid,
		.base = s->base,
	};

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    cmd->args[0].kind != IMAP_ARG_ATOM ||
	    (cmd->nargs == 2 && cmd->args[1].kind != IMAP_ARG_ATOM)) {
		imap_done(s, "BAD", "Syntax: AUTHENTICATE mechanism "
		    "[initial-response]");
		return;
	}
	auth_exchange_start(&s->auth, &a, cmd->args[0].str,
	    strlen(cmd->args[0].str), cmd->nargs == 2 ? cmd->args[1].str :
	    NULL, cmd->nargs == 2 ? cmd->args[1].len : 0);
}

/* ---- Input ------------------------------------------------------------- */

static const struct imap_cmd_def *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
dispatch(struct imap_session *s)
{
	const struct imap_cmd_def *def = command_find(s->cmd->name);

	if (def == NULL || (s->cmd->is_uid && !(def->flags & CMD_UID))) {
		imap_done(s, "BAD", "Unknown command %s%.40s",
		    s->cmd->is_uid ? "UID " : "", s->cmd->name);
		return;
	}
	/* RFC 9586 §3.1: every command that names messages by number
	 * (EXPUNGE names none). */
	if (s->is_uidonly && !s->cmd->is_uid && (def->flags & CMD_UID) &&
	    strcmp(def->name, "EXPUNGE") != 0) {
		imap_done(s, "BAD", "[UIDREQUIRED] UIDONLY is enabled: use "
		    "UID %s", def->name);
		return;
	}
	/* Another user's selected mailbox whose "r" was withdrawn is
	 * closed before the command is checked against the state. */
	(void)imap_acl_dispatch_check(s);
	if (!(def->states & (1u << s->state))) {
		imap_done(s, "BAD", "%s", s->state == IMAP_STATE_NOT_AUTH ?
		    "Log in first" : s->state == IMAP_STATE_AUTH &&
		    (def->states & ST_SELECTED) ? "Select a mailbox first" :
		    "Command not valid in this state");
		return;
	}
	if ((def->flags & CMD_NO_ARGS) && s->cmd->nargs != 0) {
		imap_done(s, "BAD", "%s takes no arguments", def->name);
		return;
	}
	/* RFC 5465 §5: what the command changes is marked as ours. */
	store_origin_set(imap_notify_origin(s));
	def->run(s, s->cmd);
	store_origin_set(0);
}

/* Returns false when the session stops reading this buffer. */
static bool
input_step(struct imap_session *s, struct buf *in)
{
	const char *line;
	size_t len;
	enum parse_rc rc;
	bool need_cont = false;

	if (s->is_idle || is_auth_exchange_active(&s->auth)) {
		rc = imap_parser_read_line(&s->parser, in, &line, &len);
		if (rc == PARSE_MORE)
			return false;
		if (rc == PARSE_ERROR) {
			line = "";
			len = 0;
		}
		if (s->is_idle)
			idle_line(s, line, len);
		else
			auth_exchange_line(&s->auth, line, len);
		return true;
	}
	rc = imap_parser_feed(&s->parser, in, &s->cmd, &need_cont);
	if (need_cont)
		imap_printf(s, "+ Ready for literal data\r\n");
	if (rc == PARSE_MORE)
		return need_cont;
	if (rc == PARSE_ERROR) {
		if (s->parser.is_fatal) {
			imap_printf(s, "* BYE %s\r\n", s->parser.error_text);
			net_conn_close(s->conn);
			return false;
		}
		imap_printf(s, "%s BAD %s\r\n", s->parser.error_tag ?
		    s->parser.error_tag : "*", s->parser.error_text);
		if (++s->errors >= IMAP_MAX_ERRORS) {
			imap_printf(s, "* BYE Too many errors, closing "
			    "connection\r\n");
			net_conn_close(s->conn);
			return false;
		}
		return true;
	}
	dispatch(s);
	return true;
}

static void
imap_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct imap_session *s = arg;

	/* is_net_conn_feeding() also stops a client that pipelines and
	 * never reads from making us queue its replies without bound. */
	while (is_net_conn_feeding(c) &&
	    (s->cmd == NULL || s->is_idle ||
	    is_auth_exchange_active(&s->auth))) {
		if (!input_step(s, in))
			break;
		if (s->is_stream_new) {
			s->is_stream_new = false;
			return;
		}
	}
	if (is_net_conn_closing(c))
		return;
	/* A command still running (a streamed FETCH, IDLE) reads nothing
	 * more until it ends; IDLE and SASL read lines themselves. */
	if (s->cmd != NULL && !s->is_idle &&
	    !is_auth_exchange_active(&s->auth))
		net_conn_pause(s->conn);
	imap_parser_compact(&s->parser, in);
}

static void *
imap_session_open(struct net_conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->ctx = net_conn_ctx(c);
	s->cfg = net_conn_config(c);
	s->base = net_conn_base(c);
	snprintf(s->sid, sizeof(s->sid), "%s", net_conn_sid(c));
	auth_exchange_init(&s->auth, &imap_auth_ops, s);
	imap_parser_init(&s->parser, s->cfg->line_length,
	    s->cfg->imap_literal_max_preauth);
	s->parser.id_line_max = IMAP_ID_LINE_MAX;
	imap_printf(s, "* OK [CAPABILITY ");
	write_capabilities(s);
	imap_printf(s, "] postern ready\r\n");
	return s;
}

static void
imap_session_drained(void *arg, struct net_conn *c)
{
	struct imap_session *s = arg;

	if (s->job_drained != NULL && !is_net_conn_waiting(c))
		s->job_drained(s);
	else if (s->job_drained == NULL)
		imap_view_drained(s);
}

static void
imap_session_timeout(void *arg, struct net_conn *c)
{
	(void)arg;
	/* RFC 9051 §5.4: the autologout timer. */
	net_conn_printf(c, "* BYE Autologout; idle for too long\r\n");
}

static void
imap_session_shutdown(void *arg, struct net_conn *c)
{
	(void)arg;
	net_conn_printf(c, "* BYE [UNAVAILABLE] Server shutting down\r\n");
}

/* net calls this once the connection is gone and no callback is awaited
 * (net.h): nothing else frees a session. */
static void
imap_session_close(void *arg)
{
	struct imap_session *s = arg;

	if (s->is_idle)
		metrics_idle_add(-1);
	job_end(s);
	imap_notify_end(s);
	imap_view_close(s);
	auth_exchange_deinit(&s->auth);
	imap_cmd_free(&s->cmd);
	imap_parser_deinit(&s->parser);
	free(s);
}

static void
imap_session_refuse(struct net_conn *c, const char *reason)
{
	net_conn_printf(c, "* BYE [UNAVAILABLE] %s\r\n", reason);
}

const struct net_session_ops imap_session_ops = {
	.open = imap_session_open,
	.input = imap_session_input,
	.timeout = imap_session_timeout,
	.shutdown = imap_session_shutdown,
	.close = imap_session_close,
	.drained = imap_session_drained,
	.refuse = imap_session_refuse,
};
