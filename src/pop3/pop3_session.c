/*
 * pop3_session: the greeting, CAPA, STLS and QUIT. Every other command is
 * answered -ERR "not implemented" until the POP3 issue (#6) replaces this
 * placeholder with the real protocol.
 */
#include "pop3/pop3.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/parse.h"
#include "lib/util.h"

struct pop3_session {
	struct net_conn *conn;
	struct line_reader reader;
};

static bool
can_stls(struct net_conn *c)
{
	return !is_net_conn_tls(c) &&
	    net_conn_listener(c)->tls == CONFIG_TLS_STARTTLS;
}

static void *
pop3_session_open(struct net_conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	/* RFC 2449 §4: a command line is at most 255 octets; we allow the
	 * configured line length. */
	line_reader_init(&s->reader, net_conn_config(c)->line_length);
	net_conn_printf(c, "+OK postern ready\r\n");
	return s;
}

static bool
is_cmd(const char *line, size_t len, const char *cmd)
{
	size_t n = strlen(cmd);

	return len >= n && strncasecmp(line, cmd, n) == 0 &&
	    (len == n || line[n] == ' ');
}

/* Returns false once the session stops reading this buffer. */
static bool
pop3_line(struct pop3_session *s, const char *line, size_t len)
{
	struct net_conn *c = s->conn;

	if (is_cmd(line, len, "CAPA")) {
		/* RFC 2449 §5: a multi-line list ending with a dot. */
		net_conn_printf(c, "+OK Capability list follows\r\n%s"
		    "IMPLEMENTATION postern\r\n.\r\n",
		    can_stls(c) ? "STLS\r\n" : "");
	} else if (is_cmd(line, len, "QUIT")) {
		net_conn_printf(c, "+OK postern signing off\r\n");
		net_conn_close(c);
		return false;
	} else if (is_cmd(line, len, "STLS")) {
		if (!can_stls(c)) {
			net_conn_printf(c, "-ERR TLS is already active or not "
			    "offered here\r\n");
			return true;
		}
		/* RFC 2595 §4. */
		net_conn_printf(c, "+OK Begin TLS negotiation\r\n");
		if (net_conn_starttls(c) < 0) {
			net_conn_close(c);
			return false;
		}
		line_reader_init(&s->reader, s->reader.max);
		return false;
	} else {
		net_conn_printf(c, "-ERR Command not implemented\r\n");
	}
	return true;
}

static void
pop3_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct pop3_session *s = arg;
	const char *line;
	size_t len;

	for (;;) {
		enum parse_rc rc = line_reader_next(&s->reader, in, &line,
		    &len);

		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			net_conn_printf(c, "-ERR Line too long\r\n");
			continue;
		}
		if (!pop3_line(s, line, len))
			return;
	}
	line_reader_compact(&s->reader, in);
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
pop3_session_close(void *arg)
{
	free(arg);
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
	.refuse = pop3_session_refuse,
};
