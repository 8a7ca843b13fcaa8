/*
 * milter_client: the conversation with each milter of a session's chain,
 * in blocking calls bounded by [milter NAME] timeout, on a thread of its
 * own per step (milter_mail, milter_rcpt, milter_message), so that the
 * session's event loop never waits for a milter. The verdict is handed
 * back with event_base_once(). A milter that cannot be reached, times out
 * or breaks the protocol is closed and, for the rest of the session,
 * stands for its default_action (accept: left out; tempfail: 451;
 * reject: 550), as in Postfix (milter_default_action).
 */
#include "milter/milter.h"
#include "milter/milter_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

/* PROGRESS packets a milter may send while thinking of one reply, and
 * how many timeouts it may think in all. */
#define MILTER_MAX_PROGRESS 10000
#define MILTER_PROGRESS_TIMEOUTS 10

struct milter_conn {
	const struct config_milter *conf;
	int fd;
	bool is_open;		/* negotiated and told of the client */
	bool is_broken;		/* gone: its default action from now on */
	bool is_conn_done;	/* accepted the whole connection */
	bool is_msg_open;	/* saw MAIL of a transaction not ended */
	bool is_msg_done;	/* accepted (or ended) the message */
	uint32_t actions;
	uint32_t protocol;
	char *helo_sent;
	/* When the packet under way must be written or read whole (ms,
	 * CLOCK_MONOTONIC): a milter trickling a byte at a time cannot hold
	 * a session, or the server's shutdown, past its timeout. */
	int64_t deadline;
};

enum milter_step {
	STEP_CONNECT,
	STEP_HELO,
	STEP_MAIL,
	STEP_RCPT,
	STEP_DATA,
	STEP_HEADER,
	STEP_EOH,
	STEP_BODY,
	STEP_EOM,
};

struct milter_job {
	struct milter_chain *chain;
	enum { JOB_MAIL, JOB_RCPT, JOB_MESSAGE } kind;
	struct milter_client cl;	/* strings owned */
	char *addr;			/* MAIL's or RCPT's */
	char **args;
	size_t nargs;
	int in_fd, out_fd;
	uint64_t in_len, max_size;
	struct event_base *base;
	milter_cb cb;
	void *arg;
	struct milter_verdict v;
};

struct milter_chain {
	char sid[24];
	struct milter_conn *conns;
	size_t n;
	bool is_abort_pending;
	/* A refusal at CONNECT or HELO: every MAIL of the session gets it
	 * (Postfix's smtpd does the same). */
	bool has_conn_refusal;
	struct milter_verdict conn_refusal;
	char queue_id[32];	/* macro i of the message under way */
	char *rbuf;		/* the packet being read */
	size_t rbuf_size;
};

struct milter_chain *
milter_chain_new(const struct config *cfg, const struct config_listener *l,
    const char *sid)
{
	struct milter_chain *c;

	if (l->nmilters == 0)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->sid, sizeof(c->sid), "%s", sid);
	c->conns = xcalloc(l->nmilters, sizeof(*c->conns));
	for (size_t i = 0; i < l->nmilters; i++) {
		const struct config_milter *m = config_milter_find(cfg,
		    l->milters[i]);

		if (m == NULL)
			panic("milter: [milter %s] vanished", l->milters[i]);
		c->conns[c->n].conf = m;
		c->conns[c->n].fd = -1;
		c->n++;
	}
	return c;
}

static void
conn_close(struct milter_conn *mc, bool is_quit)
{
	if (mc->fd >= 0) {
		if (is_quit && mc->is_open) {
			static const char quit[5] = { 0, 0, 0, 1, SMFIC_QUIT };

			/* Without waiting: the milter may be gone. */
			(void)send(mc->fd, quit, sizeof(quit),
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		close(mc->fd);
	}
	mc->fd = -1;
	mc->is_open = false;
	mc->is_msg_open = false;
}

void
milter_chain_free(struct milter_chain **cp)
{
	struct milter_chain *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		conn_close(&c->conns[i], true);
		free(c->conns[i].helo_sent);
	}
	free(c->conns);
	free(c->rbuf);
	free(c);
	*cp = NULL;
}

void
milter_abort(struct milter_chain *c)
{
	if (c != NULL)
		c->is_abort_pending = true;
}

/* ---- I/O, each wait bounded by the milter's timeout ------------------ */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
deadline_set(struct milter_conn *mc, uint64_t seconds)
{
	mc->deadline = now_ms() + (int64_t)seconds * 1000;
}

static int
io_wait(struct milter_conn *mc, short events)
{
	struct pollfd p = { .fd = mc->fd, .events = events };
	int rc;

	do {
		int64_t left = mc->deadline - now_ms();

		rc = left <= 0 ? 0 : poll(&p, 1, (int)left);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0)
		errno = ETIMEDOUT;
	return rc > 0 ? 0 : -1;
}

static int
io_send(struct milter_conn *mc, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(mc->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (io_wait(mc, POLLOUT) < 0)
				return -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
io_recv(struct milter_conn *mc, void *data, size_t len)
{
	char *p = data;

	while (len > 0) {
		ssize_t n = recv(mc->fd, p, len, 0);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (io_wait(mc, POLLIN) < 0)
				return -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = ECONNRESET;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
conn_connect(struct milter_conn *mc)
{
	const char *s = mc->conf->socket;
	struct sockaddr_storage ss;
	socklen_t sl;
	int err = 0;
	socklen_t el = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", s + 5);
		sl = sizeof(*un);
	} else {
		const char *a = s + 5, *colon;
		char host[64];
		size_t n;
		int port;

		if (*a == '[') {
			const char *end = strchr(a, ']');

			n = (size_t)(end - a - 1);
			memcpy(host, a + 1, n);
			colon = end + 1;
		} else {
			colon = strrchr(a, ':');
			n = (size_t)(colon - a);
			memcpy(host, a, n);
		}
		host[n] = '\0';
		port = atoi(colon + 1);
		if (strchr(host, ':') != NULL) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
				return -1;
			sl = sizeof(*in6);
		} else {
			struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;

			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)port);
			if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
				return -1;
			sl = sizeof(*in4);
		}
	}
	mc->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (mc->fd < 0)
		return -1;
	if (ss.ss_family != AF_UNIX) {
		int one = 1;

		(void)setsockopt(mc->fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	}
	deadline_set(mc, mc->conf->timeout);
	if (connect(mc->fd, (struct sockaddr *)&ss, sl) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -1;
	if (io_wait(mc, POLLOUT) < 0)
		return -1;
	if (getsockopt(mc->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
	    err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* One write per packet: with TCP_NODELAY each is one segment, and no
 * small write waits for the milter's delayed ACK (40 ms a step before;
 * Nagle's algorithm held the data behind its 5-byte head). */
static int
packet_send(struct milter_conn *mc, char cmd, const void *data, size_t len)
{
	char small[4096];
	char *p = len + 5 <= sizeof(small) ? small : xmalloc(len + 5);
	uint32_t n = htonl((uint32_t)(len + 1));
	int rc;

	memcpy(p, &n, 4);
	p[4] = cmd;
	if (len > 0)
		memcpy(p + 5, data, len);
	deadline_set(mc, mc->conf->timeout);
	rc = io_send(mc, p, len + 5);
	if (p != small)
		free(p);
	return rc;
}

/* Reads one reply, PROGRESS packets skipped; r points into c->rbuf.
 * Each packet must come whole within the timeout; PROGRESS gives the
 * milter another timeout, up to MILTER_PROGRESS_TIMEOUTS of them. */
static int
reply_recv(struct milter_chain *c, struct milter_conn *mc,
    struct milter_reply *r, const char **why)
{
	int64_t last = now_ms() + (int64_t)mc->conf->timeout * 1000 *
	    MILTER_PROGRESS_TIMEOUTS;

	for (unsigned progress = 0; progress < MILTER_MAX_PROGRESS;
	    progress++) {
		unsigned char hdr[4];
		uint32_t n;

		deadline_set(mc, mc->conf->timeout);
		if (mc->deadline > last)
			mc->deadline = last;
		if (io_recv(mc, hdr, 4) < 0) {
			*why = errno == ETIMEDOUT ? "timeout" : "read";
			return -1;
		}
		if (milter_packet_length(hdr, MILTER_MAX_PACKET, &n) < 0) {
			*why = "packet length";
			return -1;
		}
		if (c->rbuf_size < n + 1) {
			c->rbuf = xrealloc(c->rbuf, n + 1);
			c->rbuf_size = n + 1;
		}
		if (io_recv(mc, c->rbuf, n) < 0) {
			*why = errno == ETIMEDOUT ? "timeout" : "read";
			return -1;
		}
		c->rbuf[n] = '\0';
		if (c->rbuf[0] == SMFIR_PROGRESS)
			continue;
		if (milter_reply_parse(c->rbuf[0], c->rbuf + 1, n - 1, r) < 0) {
			*why = "malformed reply";
			return -1;
		}
		return 0;
	}
	*why = "endless progress";
	return -1;
}

/* Sends the macros of the command cmd: name/value pairs, a NULL name
 * ends them, a NULL value is left out. */
static int
macros_send(struct milter_conn *mc, char cmd, const char *const *pairs)
{
	struct buf b;
	int rc;

	buf_init(&b, 64 * 1024);
	(void)buf_append(&b, &cmd, 1);
	for (size_t i = 0; pairs[i] != NULL; i += 2) {
		if (pairs[i + 1] == NULL)
			continue;
		if (buf_append(&b, pairs[i], strlen(pairs[i]) + 1) < 0 ||
		    buf_append(&b, pairs[i + 1], strlen(pairs[i + 1]) + 1) < 0)
			break;
	}
	rc = packet_send(mc, SMFIC_MACRO, b.data, b.len);
	buf_deinit(&b);
	return rc;
}

/* ---- Verdicts ------------------------------------------------------- */

static void
verdict_set(struct milter_verdict *v, const struct milter_conn *mc,
    enum milter_result result, const char *reply)
{
	v->result = result;
	snprintf(v->reply, sizeof(v->reply), "%s", reply);
	snprintf(v->milter, sizeof(v->milter), "%s", mc->conf->name);
}

/* A milter that is gone: 1 with the verdict of its default action, or
 * 0 (accept: carry on without it). */
static int
default_action(const struct milter_conn *mc, struct milter_verdict *v)
{
	switch (mc->conf->default_action) {
	case CONFIG_MILTER_TEMPFAIL:
		verdict_set(v, mc, MILTER_TEMPFAIL, "451 4.7.1 Service "
		    "unavailable - try again later\r\n");
		return 1;
	case CONFIG_MILTER_REJECT:
		verdict_set(v, mc, MILTER_REJECT, "550 5.7.1 Command "
		    "rejected\r\n");
		return 1;
	default:
		return 0;
	}
}

static int
conn_fail(struct milter_chain *c, struct milter_conn *mc, const char *step,
    const char *why, struct milter_verdict *v)
{
	log_warn(c->sid, "milter.failed milter=%s socket=%s step=%s "
	    "reason=\"%s\" errno=\"%s\" action=%s", mc->conf->name,
	    mc->conf->socket, step, why, errno ? strerror(errno) : "",
	    config_milter_action_name(mc->conf->default_action));
	conn_close(mc, false);
	mc->is_broken = true;
	return default_action(mc, v);
}

/* What a reply to a step means: 0 carry on (to the next milter), 1 stop
 * with *v set, -1 a reply the step cannot have. */
static int
reply_judge(struct milter_conn *mc, const struct milter_reply *r,
    enum milter_step step, struct milter_verdict *v)
{
	char reply[MILTER_REPLY_MAX];
	int kind;

	switch (r->cmd) {
	case SMFIR_CONTINUE:
		return 0;
	case SMFIR_ACCEPT:
		if (step <= STEP_HELO)
			mc->is_conn_done = true;
		else
			mc->is_msg_done = true;
		return 0;
	case SMFIR_REJECT:
		verdict_set(v, mc, MILTER_REJECT, step == STEP_RCPT ?
		    "550 5.7.1 Recipient rejected\r\n" :
		    "550 5.7.1 Command rejected\r\n");
		return 1;
	case SMFIR_TEMPFAIL:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		verdict_set(v, mc, MILTER_TEMPFAIL, "451 4.7.1 Service "
		    "unavailable - try again later\r\n");
		return 1;
	case SMFIR_REPLYCODE:
		kind = milter_replycode_clean(r->name, strlen(r->name), reply,
		    sizeof(reply));
		if (kind < 0)
			return -1;
		verdict_set(v, mc, kind == 5 ? MILTER_REJECT :
		    MILTER_TEMPFAIL, reply);
		return 1;
	case SMFIR_DISCARD:
		if (step <= STEP_HELO)
			return -1;
		mc->is_msg_done = true;
		verdict_set(v, mc, MILTER_DISCARD, "");
		return 1;
	default:
		return -1;
	}
}

static const char *
step_name(enum milter_step s)
{
	static const char *const names[] = { "connect", "helo", "mail",
	    "rcpt", "data", "header", "eoh", "body", "eom" };

	return names[s];
}

/* Sends a command and judges its reply (none when the milter asked for
 * no reply with nr_flag). 0: carry on; 1: stop with *v. */
static int
exchange(struct milter_chain *c, struct milter_conn *mc, enum milter_step step,
    char cmd, const void *data, size_t len, uint32_t nr_flag,
    struct milter_verdict *v)
{
	struct milter_reply r;
	const char *why = "write";
	int rc;

	errno = 0;
	if (packet_send(mc, cmd, data, len) < 0)
		return conn_fail(c, mc, step_name(step), errno == ETIMEDOUT ?
		    "timeout" : "write", v);
	if (mc->protocol & nr_flag)
		return 0;
	if (reply_recv(c, mc, &r, &why) < 0)
		return conn_fail(c, mc, step_name(step), why, v);
	rc = reply_judge(mc, &r, step, v);
	if (rc < 0) {
		errno = 0;
		return conn_fail(c, mc, step_name(step), "unexpected reply",
		    v);
	}
	if (rc > 0)
		log_info(c->sid, "milter.verdict milter=%s step=%s reply=%c",
		    mc->conf->name, step_name(step), r.cmd);
	return rc;
}

/* ---- Steps ---------------------------------------------------------- */

/* Connects, negotiates and tells the milter of the client; then HELO
 * when it is new. 0: carry on; 1: stop with *v. */
static int
conn_prepare(struct milter_chain *c, struct milter_conn *mc,
    const struct milter_client *cl, struct milter_verdict *v)
{
	int rc;

	if (mc->is_broken)
		return default_action(mc, v);
	if (!mc->is_open) {
		unsigned char opt[12];
		uint32_t w[3] = { htonl(MILTER_VERSION),
		    htonl(MILTER_ACTIONS), htonl(MILTER_PROTOCOL) };
		struct milter_reply r;
		const char *why = "read";

		errno = 0;
		if (conn_connect(mc) < 0)
			return conn_fail(c, mc, "connect", errno == ETIMEDOUT ?
			    "timeout" : "connect", v);
		memcpy(opt, w, sizeof(opt));
		if (packet_send(mc, SMFIC_OPTNEG, opt, sizeof(opt)) < 0)
			return conn_fail(c, mc, "optneg", "write", v);
		if (reply_recv(c, mc, &r, &why) < 0)
			return conn_fail(c, mc, "optneg", why, v);
		if (r.cmd != SMFIC_OPTNEG || r.version < 2 ||
		    r.version > MILTER_VERSION) {
			errno = 0;
			return conn_fail(c, mc, "optneg", "bad negotiation",
			    v);
		}
		/* What we did not offer is not done: a milter asking for
		 * more loses it (logged), as Postfix does. */
		if ((r.actions & ~(uint32_t)MILTER_ACTIONS) != 0 ||
		    (r.protocol & ~(uint32_t)MILTER_PROTOCOL &
		    0x0fffffffu) != 0)
			log_info(c->sid, "milter.optneg milter=%s actions=0x%x "
			    "protocol=0x%x hint=\"asks for more than offered; "
			    "the rest is not done\"", mc->conf->name,
			    r.actions, r.protocol);
		mc->actions = r.actions & MILTER_ACTIONS;
		mc->protocol = r.protocol & MILTER_PROTOCOL;
		mc->is_open = true;
		if (!(mc->protocol & SMFIP_NOCONNECT)) {
			char port[8], underscore[300];
			const char *name = cl->name;
			struct buf b;
			char family = strchr(cl->addr, ':') ? '6' : '4';
			uint16_t nport = htons(cl->port);
			char bracket[80];

			snprintf(bracket, sizeof(bracket), "[%s]", cl->addr);
			if (name == NULL)
				name = bracket;
			snprintf(port, sizeof(port), "%u", cl->port);
			snprintf(underscore, sizeof(underscore), "%s [%s]",
			    name, cl->addr);
			const char *m[] = { "j", cl->hostname,
			    "{daemon_name}", cl->daemon_name, "v", "postern",
			    "_", underscore, "{client_addr}", cl->addr,
			    "{client_name}", name, "{client_port}", port,
			    NULL };

			if (macros_send(mc, SMFIC_CONNECT, m) < 0)
				return conn_fail(c, mc, "connect", "write", v);
			buf_init(&b, 1024);
			(void)buf_append(&b, name, strlen(name) + 1);
			(void)buf_append(&b, &family, 1);
			(void)buf_append(&b, &nport, 2);
			(void)buf_append(&b, cl->addr, strlen(cl->addr) + 1);
			rc = exchange(c, mc, STEP_CONNECT, SMFIC_CONNECT,
			    b.data, b.len, SMFIP_NR_CONN, v);
			buf_deinit(&b);
			if (rc != 0)
				return rc;
		}
	}
	if (mc->is_conn_done || cl->helo == NULL || (mc->helo_sent != NULL &&
	    strcmp(mc->helo_sent, cl->helo) == 0))
		return 0;
	free(mc->helo_sent);
	mc->helo_sent = xstrdup(cl->helo);
	if (mc->protocol & SMFIP_NOHELO)
		return 0;
	const char *m[] = { "{tls_version}", cl->tls_version, "{cipher}",
	    cl->tls_cipher, NULL };

	if (macros_send(mc, SMFIC_HELO, m) < 0)
		return conn_fail(c, mc, "helo", "write", v);
	return exchange(c, mc, STEP_HELO, SMFIC_HELO, cl->helo,
	    strlen(cl->helo) + 1, SMFIP_NR_HELO, v);
}

/* ABORT to every milter that saw part of a transaction that ended. */
static void
abort_pending(struct milter_chain *c)
{
	if (!c->is_abort_pending)
		return;
	c->is_abort_pending = false;
	for (size_t i = 0; i < c->n; i++) {
		struct milter_conn *mc = &c->conns[i];

		if (mc->is_open && mc->is_msg_open &&
		    packet_send(mc, SMFIC_ABORT, NULL, 0) < 0) {
			struct milter_verdict ignored;

			(void)conn_fail(c, mc, "abort", "write", &ignored);
		}
		mc->is_msg_open = false;
		mc->is_msg_done = false;
	}
}

/* "<addr>\0ARG\0ARG\0" */
static void
envelope_format(struct buf *b, const char *addr, char *const *args,
    size_t nargs)
{
	(void)buf_append(b, "<", 1);
	(void)buf_append(b, addr, strlen(addr));
	(void)buf_append(b, ">", 2);
	for (size_t i = 0; i < nargs; i++)
		(void)buf_append(b, args[i], strlen(args[i]) + 1);
}

static void
job_mail(struct milter_job *j)
{
	struct milter_chain *c = j->chain;
	struct milter_verdict *v = &j->v;
	struct buf b;

	abort_pending(c);
	snprintf(c->queue_id, sizeof(c->queue_id), "%s", j->cl.queue_id ?
	    j->cl.queue_id : "");
	if (c->has_conn_refusal) {
		*v = c->conn_refusal;
		return;
	}
	buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < c->n; i++) {
		struct milter_conn *mc = &c->conns[i];
		int rc = conn_prepare(c, mc, &j->cl, v);

		if (rc != 0) {
			if (!mc->is_broken) {
				/* Refused at CONNECT or HELO. */
				c->has_conn_refusal = true;
				c->conn_refusal = *v;
			}
			break;
		}
		if (mc->is_broken || mc->is_conn_done)
			continue;
		mc->is_msg_open = true;
		mc->is_msg_done = false;
		if (mc->protocol & SMFIP_NOMAIL)
			continue;
		const char *m[] = { "i", j->cl.queue_id, "{auth_authen}",
		    j->cl.auth_authen, "{mail_addr}", j->addr, NULL };

		if (macros_send(mc, SMFIC_MAIL, m) < 0) {
			if (conn_fail(c, mc, "mail", "write", v) != 0)
				break;
			continue;
		}
		buf_clear(&b);
		envelope_format(&b, j->addr, j->args, j->nargs);
		if (exchange(c, mc, STEP_MAIL, SMFIC_MAIL, b.data, b.len,
		    SMFIP_NR_MAIL, v) != 0)
			break;
	}
	buf_deinit(&b);
}

/* Whether the milter takes part in the message under way. */
static bool
is_in_message(const struct milter_conn *mc)
{
	return !mc->is_broken && mc->is_open && !mc->is_conn_done &&
	    mc->is_msg_open && !mc->is_msg_done;
}

static void
job_rcpt(struct milter_job *j)
{
	struct milter_chain *c = j->chain;
	struct milter_verdict *v = &j->v;
	struct buf b;

	buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < c->n; i++) {
		struct milter_conn *mc = &c->conns[i];

		if (mc->is_broken) {
			if (default_action(mc, v) != 0)
				break;
			continue;
		}
		if (!is_in_message(mc) || (mc->protocol & SMFIP_NORCPT))
			continue;
		const char *m[] = { "{rcpt_addr}", j->addr, NULL };

		if (macros_send(mc, SMFIC_RCPT, m) < 0) {
			if (conn_fail(c, mc, "rcpt", "write", v) != 0)
				break;
			continue;
		}
		buf_clear(&b);
		envelope_format(&b, j->addr, j->args, j->nargs);
		if (exchange(c, mc, STEP_RCPT, SMFIC_RCPT, b.data, b.len,
		    SMFIP_NR_RCPT, v) != 0)
			break;
	}
	buf_deinit(&b);
}

/* ---- The message ---------------------------------------------------- */

/* A change asked for at EOM, kept until the milter's final reply so that
 * a milter failing half-way changes nothing. */
struct milter_change {
	char cmd;
	uint32_t index;
	char *name;
	char *value;
	size_t value_len;
};

struct milter_msg {
	struct milter_header orig;	/* as sent to every milter */
	struct milter_header mod;	/* with the changes so far */
	uint64_t body_off;
	struct buf body;		/* a replacement body */
	bool has_body;
	struct milter_change *changes;	/* the milter's, pending */
	size_t nchanges;
	size_t change_bytes;
};

static void
changes_clear(struct milter_msg *m)
{
	for (size_t i = 0; i < m->nchanges; i++) {
		free(m->changes[i].name);
		free(m->changes[i].value);
	}
	free(m->changes);
	m->changes = NULL;
	m->nchanges = 0;
	m->change_bytes = 0;
}

/* Reads the header section of the spool: 0 with body_off set, -1 when
 * it is over the bounds. */
static int
message_header_read(struct milter_job *j, struct milter_msg *m)
{
	uint64_t want = j->in_len < MILTER_MAX_HEADER + 4 ? j->in_len :
	    MILTER_MAX_HEADER + 4;
	char *data = xmalloc(want + 1);
	ssize_t got = pread(j->in_fd, data, want, 0);
	size_t hlen = 0;
	int rc = -1;

	if (got < 0 || (uint64_t)got != want)
		goto out;
	if (got >= 2 && memcmp(data, "\r\n", 2) == 0) {
		hlen = 0;
		m->body_off = 2;
	} else {
		char *e = memmem(data, (size_t)got, "\r\n\r\n", 4);

		if (e == NULL) {
			/* No body: the whole spool is the header. */
			if (j->in_len > MILTER_MAX_HEADER)
				goto out;
			hlen = (size_t)got;
			m->body_off = j->in_len;
		} else {
			hlen = (size_t)(e - data) + 2;
			m->body_off = hlen + 2;
		}
	}
	if (milter_header_parse(&m->orig, data, hlen) < 0 ||
	    milter_header_parse(&m->mod, data, hlen) < 0)
		goto out;
	rc = 0;
out:
	free(data);
	return rc;
}

/* A header as the milter is sent it: "Name\0value\0", the value without
 * the space after the colon (unless SMFIP_HDR_LEADSPC) and its folding
 * line ends as LF, as Postfix sends them. */
static void
header_format(struct buf *b, const struct milter_field *f, bool is_leadspc)
{
	const char *v = f->value;

	if (!is_leadspc && *v == ' ')
		v++;
	(void)buf_append(b, f->name, strlen(f->name) + 1);
	for (; *v != '\0'; v++) {
		if (*v == '\r' && v[1] == '\n')
			continue;
		(void)buf_append(b, v, 1);
	}
	(void)buf_append(b, "", 1);
}

/* The EOM replies: changes kept, until the final one. */
static int
eom_replies(struct milter_chain *c, struct milter_job *j,
    struct milter_conn *mc, struct milter_msg *m, struct milter_verdict *v)
{
	bool is_body_started = false, is_cr = false;
	struct buf body;
	int rc = -1;

	buf_init(&body, j->max_size);
	for (;;) {
		struct milter_reply r;
		const char *why = "read";
		uint32_t need = 0;

		if (reply_recv(c, mc, &r, &why) < 0) {
			rc = conn_fail(c, mc, "eom", why, v);
			goto out;
		}
		switch (r.cmd) {
		case SMFIR_ADDHEADER:
			need = SMFIF_ADDHDRS;
			break;
		case SMFIR_INSHEADER:
			need = SMFIF_ADDHDRS;
			break;
		case SMFIR_CHGHEADER:
			need = SMFIF_CHGHDRS;
			break;
		case SMFIR_REPLBODY:
			need = SMFIF_CHGBODY;
			break;
		case SMFIR_QUARANTINE:
			need = SMFIF_QUARANTINE;
			break;
		case SMFIR_DELRCPT:
			need = SMFIF_DELRCPT;
			break;
		case SMFIR_ADDRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_CHGFROM:
			/* Not offered (MILTER_ACTIONS): left undone. */
			log_warn(c->sid, "milter.change_ignored milter=%s "
			    "reply=%c hint=\"envelope changes are not "
			    "supported\"", mc->conf->name, r.cmd);
			continue;
		default:
			rc = reply_judge(mc, &r, STEP_EOM, v);
			if (rc < 0) {
				errno = 0;
				rc = conn_fail(c, mc, "eom", "unexpected reply",
				    v);
				goto out;
			}
			if (rc > 0) {
				log_info(c->sid, "milter.verdict milter=%s "
				    "step=eom reply=%c", mc->conf->name, r.cmd);
				goto out;
			}
			/* Accepted: the changes are made. */
			for (size_t i = 0; i < m->nchanges; i++) {
				struct milter_change *ch = &m->changes[i];
				bool ls = mc->protocol & SMFIP_HDR_LEADSPC;
				int e;

				if (ch->cmd == SMFIR_DELRCPT) {
					v->delrcpts = xrealloc(v->delrcpts,
					    (v->ndelrcpts + 1) *
					    sizeof(*v->delrcpts));
					v->delrcpts[v->ndelrcpts++] =
					    ch->name;
					ch->name = NULL;
					continue;
				}
				if (ch->cmd == SMFIR_ADDHEADER)
					e = milter_header_add(&m->mod, ch->name,
					    ch->value, ch->value_len, ls);
				else if (ch->cmd == SMFIR_INSHEADER)
					e = milter_header_insert(&m->mod,
					    ch->index, ch->name, ch->value,
					    ch->value_len, ls);
				else
					e = milter_header_change(&m->mod,
					    ch->index, ch->name, ch->value,
					    ch->value_len, ls);
				if (e < 0)
					log_warn(c->sid, "milter.change_"
					    "ignored milter=%s header=%s "
					    "hint=\"over the header bounds\"",
					    mc->conf->name, ch->name);
			}
			if (is_body_started) {
				buf_deinit(&m->body);
				m->body = body;
				buf_init(&body, 1);
				m->has_body = true;
			}
			rc = 0;
			goto out;
		}
		if (!(mc->actions & need)) {
			errno = 0;
			rc = conn_fail(c, mc, "eom", "change not negotiated",
			    v);
			goto out;
		}
		if (r.cmd == SMFIR_REPLBODY) {
			/* The buffer's cap is the message size: line ends
			 * made CRLF count, and nothing is cut short. */
			is_body_started = true;
			if (milter_body_clean(&body, r.data, r.data_len,
			    &is_cr) < 0) {
				errno = 0;
				rc = conn_fail(c, mc, "eom", "replaced body "
				    "over the message size", v);
				goto out;
			}
			continue;
		}
		if (r.cmd == SMFIR_QUARANTINE) {
			v->is_quarantined = true;
			snprintf(v->quarantine, sizeof(v->quarantine), "%s",
			    r.name);
			continue;
		}
		if (m->nchanges >= MILTER_MAX_CHANGES ||
		    m->change_bytes + r.value_len + strlen(r.name) >
		    MILTER_MAX_HEADER) {
			errno = 0;
			rc = conn_fail(c, mc, "eom", "too many changes", v);
			goto out;
		}
		if (m->nchanges % 32 == 0)
			m->changes = xrealloc(m->changes, (m->nchanges + 32) *
			    sizeof(*m->changes));
		struct milter_change *ch = &m->changes[m->nchanges++];

		ch->cmd = r.cmd;
		ch->index = r.index;
		if (r.cmd == SMFIR_DELRCPT) {
			/* "<a@b>" or "a@b". */
			size_t n = strlen(r.name);
			const char *a = r.name;

			if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
				a++;
				n -= 2;
			}
			ch->name = xstrndup(a, n);
		} else {
			ch->name = xstrdup(r.name);
		}
		ch->value = xmalloc(r.value_len + 1);
		if (r.value_len > 0)
			memcpy(ch->value, r.value, r.value_len);
		ch->value[r.value_len] = '\0';
		ch->value_len = r.value_len;
		m->change_bytes += r.value_len + strlen(r.name);
	}
out:
	changes_clear(m);
	buf_deinit(&body);
	return rc;
}

/* The message to one milter: 0 carry on, 1 stop with *v. */
static int
message_one(struct milter_chain *c, struct milter_job *j,
    struct milter_conn *mc, struct milter_msg *m, struct milter_verdict *v)
{
	bool ls = mc->protocol & SMFIP_HDR_LEADSPC;
	const char *mi[] = { "i", c->queue_id, NULL };
	struct buf b;
	char *chunk;
	int rc = 0;

	if (!(mc->protocol & SMFIP_NODATA)) {
		if (macros_send(mc, SMFIC_DATA, mi) < 0)
			return conn_fail(c, mc, "data", "write", v);
		if ((rc = exchange(c, mc, STEP_DATA, SMFIC_DATA, NULL, 0,
		    SMFIP_NR_DATA, v)) != 0 || !is_in_message(mc))
			return rc;
	}
	if (!(mc->protocol & SMFIP_NOHDRS)) {
		buf_init(&b, MILTER_MAX_HEADER + 512);
		for (size_t i = 0; i < m->orig.n; i++) {
			buf_clear(&b);
			header_format(&b, &m->orig.fields[i], ls);
			rc = exchange(c, mc, STEP_HEADER, SMFIC_HEADER, b.data,
			    b.len, SMFIP_NR_HDR, v);
			if (rc != 0 || !is_in_message(mc))
				break;
		}
		buf_deinit(&b);
		if (rc != 0 || !is_in_message(mc))
			return rc;
	}
	if (!(mc->protocol & SMFIP_NOEOH)) {
		if ((rc = exchange(c, mc, STEP_EOH, SMFIC_EOH, NULL, 0,
		    SMFIP_NR_EOH, v)) != 0 || !is_in_message(mc))
			return rc;
	}
	if (!(mc->protocol & SMFIP_NOBODY)) {
		chunk = xmalloc(MILTER_BODY_CHUNK);
		for (uint64_t off = m->body_off; off < j->in_len;) {
			uint64_t left = j->in_len - off;
			size_t n = left < MILTER_BODY_CHUNK ? (size_t)left :
			    MILTER_BODY_CHUNK;
			ssize_t got = pread(j->in_fd, chunk, n, (off_t)off);
			struct milter_reply r;
			const char *why = "read";

			if (got <= 0) {
				/* Our own spool: the message cannot go on. */
				verdict_set(v, mc, MILTER_TEMPFAIL, "451 4.3.0 "
				    "Temporary failure reading the message\r\n");
				free(chunk);
				return 1;
			}
			off += (uint64_t)got;
			errno = 0;
			if (packet_send(mc, SMFIC_BODY, chunk, (size_t)got) <
			    0) {
				free(chunk);
				return conn_fail(c, mc, "body", errno ==
				    ETIMEDOUT ? "timeout" : "write", v);
			}
			if (mc->protocol & SMFIP_NR_BODY)
				continue;
			if (reply_recv(c, mc, &r, &why) < 0) {
				free(chunk);
				return conn_fail(c, mc, "body", why, v);
			}
			if (r.cmd == SMFIR_SKIP)
				break;
			rc = reply_judge(mc, &r, STEP_BODY, v);
			if (rc < 0) {
				free(chunk);
				errno = 0;
				return conn_fail(c, mc, "body",
				    "unexpected reply", v);
			}
			if (rc != 0 || !is_in_message(mc)) {
				free(chunk);
				return rc;
			}
		}
		free(chunk);
	}
	if (macros_send(mc, SMFIC_BODYEOB, mi) < 0 ||
	    packet_send(mc, SMFIC_BODYEOB, NULL, 0) < 0)
		return conn_fail(c, mc, "eom", errno == ETIMEDOUT ? "timeout" :
		    "write", v);
	rc = eom_replies(c, j, mc, m, v);
	/* The transaction is over for this milter (libmilter resets after
	 * EOM); a broken one was closed already. */
	mc->is_msg_open = false;
	mc->is_msg_done = false;
	return rc;
}

/* Writes the changed message into out_fd. */
static int
message_write(struct milter_job *j, struct milter_msg *m)
{
	struct buf h;
	uint64_t off = 0;
	int rc = 0;

	buf_init(&h, m->mod.bytes + 2 * m->mod.n + 16);
	milter_header_format(&m->mod, &h);
	if (pwrite(j->out_fd, h.data, h.len, 0) != (ssize_t)h.len)
		rc = -1;
	off = h.len;
	buf_deinit(&h);
	if (rc == 0 && m->has_body) {
		if (m->body.len > 0 && pwrite(j->out_fd, m->body.data,
		    m->body.len, (off_t)off) != (ssize_t)m->body.len)
			rc = -1;
		off += m->body.len;
	} else if (rc == 0) {
		char *chunk = xmalloc(65536);

		for (uint64_t p = m->body_off; rc == 0 && p < j->in_len;) {
			size_t n = j->in_len - p < 65536 ?
			    (size_t)(j->in_len - p) : 65536;
			ssize_t got = pread(j->in_fd, chunk, n, (off_t)p);

			if (got <= 0 || pwrite(j->out_fd, chunk, (size_t)got,
			    (off_t)off) != got)
				rc = -1;
			else {
				p += (uint64_t)got;
				off += (uint64_t)got;
			}
		}
		free(chunk);
	}
	j->v.out_len = off;
	return rc;
}

static void
job_message(struct milter_job *j)
{
	struct milter_chain *c = j->chain;
	struct milter_verdict *v = &j->v;
	struct milter_msg m;

	memset(&m, 0, sizeof(m));
	buf_init(&m.body, 1);
	if (message_header_read(j, &m) < 0) {
		v->result = MILTER_REJECT;
		snprintf(v->reply, sizeof(v->reply), "552 5.3.4 Header section "
		    "too large for the content filters\r\n");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct milter_conn *mc = &c->conns[i];

		if (mc->is_broken) {
			if (default_action(mc, v) != 0)
				break;
			continue;
		}
		if (!is_in_message(mc))
			continue;
		if (message_one(c, j, mc, &m, v) != 0)
			break;
	}
	if (v->result == MILTER_CONTINUE && (m.mod.is_changed || m.has_body)) {
		if (message_write(j, &m) < 0) {
			v->result = MILTER_TEMPFAIL;
			snprintf(v->reply, sizeof(v->reply), "451 4.3.0 "
			    "Temporary failure storing the message\r\n");
		} else {
			v->is_changed = true;
		}
	}
out:
	milter_header_deinit(&m.orig);
	milter_header_deinit(&m.mod);
	buf_deinit(&m.body);
	changes_clear(&m);
}

/* ---- Threads -------------------------------------------------------- */

static void
job_free(struct milter_job *j)
{
	free((char *)j->cl.hostname);
	free((char *)j->cl.daemon_name);
	free((char *)j->cl.addr);
	free((char *)j->cl.name);
	free((char *)j->cl.helo);
	free((char *)j->cl.tls_version);
	free((char *)j->cl.tls_cipher);
	free((char *)j->cl.auth_authen);
	free((char *)j->cl.queue_id);
	free(j->addr);
	for (size_t i = 0; i < j->nargs; i++)
		free(j->args[i]);
	free(j->args);
	for (size_t i = 0; i < j->v.ndelrcpts; i++)
		free(j->v.delrcpts[i]);
	free(j->v.delrcpts);
	free(j);
}

static void
on_job_done(evutil_socket_t fd, short what, void *arg)
{
	struct milter_job *j = arg;

	(void)fd;
	(void)what;
	j->cb(j->arg, &j->v);
	job_free(j);
}

static void *
job_main(void *arg)
{
	struct milter_job *j = arg;

	switch (j->kind) {
	case JOB_MAIL:
		job_mail(j);
		break;
	case JOB_RCPT:
		job_rcpt(j);
		break;
	case JOB_MESSAGE:
		job_message(j);
		break;
	}
	/* event_base_once is safe from another thread once libevent runs
	 * with evthread_use_pthreads() (as workpool.c relies on). */
	if (event_base_once(j->base, -1, EV_TIMEOUT, on_job_done, j,
	    NULL) < 0)
		panic("milter: cannot schedule a verdict");
	return NULL;
}

static void
job_start(struct milter_job *j)
{
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, job_main, j) != 0) {
		/* No thread for it: a temporary failure, from the loop. */
		log_error(j->chain->sid, "milter.no_thread");
		j->v.result = MILTER_TEMPFAIL;
		snprintf(j->v.reply, sizeof(j->v.reply), "451 4.3.0 "
		    "Temporary failure, try again later\r\n");
		if (event_base_once(j->base, -1, EV_TIMEOUT, on_job_done, j,
		    NULL) < 0)
			panic("milter: cannot schedule a verdict");
	}
	pthread_attr_destroy(&attr);
}

static char *
strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct milter_job *
job_new(struct milter_chain *c, struct event_base *base, milter_cb cb,
    void *arg)
{
	struct milter_job *j = xcalloc(1, sizeof(*j));

	j->chain = c;
	j->base = base;
	j->cb = cb;
	j->arg = arg;
	j->in_fd = j->out_fd = -1;
	j->v.result = MILTER_CONTINUE;
	return j;
}

static void
job_args(struct milter_job *j, const char *addr, const char *const *args,
    size_t nargs)
{
	j->addr = xstrdup(addr);
	j->args = xcalloc(nargs + 1, sizeof(*j->args));
	for (size_t i = 0; i < nargs; i++)
		j->args[i] = xstrdup(args[i]);
	j->nargs = nargs;
}

void
milter_mail(struct milter_chain *c, const struct milter_client *cl,
    const char *from, const char *const *args, size_t nargs,
    struct event_base *base, milter_cb cb, void *arg)
{
	struct milter_job *j = job_new(c, base, cb, arg);

	j->kind = JOB_MAIL;
	j->cl.hostname = strdup_or_null(cl->hostname);
	j->cl.daemon_name = strdup_or_null(cl->daemon_name);
	j->cl.addr = strdup_or_null(cl->addr ? cl->addr : "0.0.0.0");
	j->cl.port = cl->port;
	j->cl.name = strdup_or_null(cl->name);
	j->cl.helo = strdup_or_null(cl->helo);
	j->cl.tls_version = strdup_or_null(cl->tls_version);
	j->cl.tls_cipher = strdup_or_null(cl->tls_cipher);
	j->cl.auth_authen = strdup_or_null(cl->auth_authen);
	j->cl.queue_id = strdup_or_null(cl->queue_id);
	job_args(j, from, args, nargs);
	job_start(j);
}

void
milter_rcpt(struct milter_chain *c, const char *rcpt,
    const char *const *args, size_t nargs, struct event_base *base,
    milter_cb cb, void *arg)
{
	struct milter_job *j = job_new(c, base, cb, arg);

	j->kind = JOB_RCPT;
	job_args(j, rcpt, args, nargs);
	job_start(j);
}

void
milter_message(struct milter_chain *c, int in_fd, uint64_t in_len,
    int out_fd, uint64_t max_size, struct event_base *base, milter_cb cb,
    void *arg)
{
	struct milter_job *j = job_new(c, base, cb, arg);

	j->kind = JOB_MESSAGE;
	j->in_fd = in_fd;
	j->in_len = in_len;
	j->out_fd = out_fd;
	j->max_size = max_size;
	job_start(j);
}
