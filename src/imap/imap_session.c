/*
 * imap_session: the greeting, CAPABILITY, NOOP, LOGOUT and STARTTLS. Every
 * other command is answered BAD "not implemented" until the IMAP issue
 * (#7) replaces this placeholder with the real protocol.
 */
#include "imap/imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/parse.h"
#include "lib/util.h"

struct imap_session {
	struct net_conn *conn;
	struct line_reader reader;
};

static bool
can_starttls(struct net_conn *c)
{
	return !is_net_conn_tls(c) &&
	    net_conn_listener(c)->tls == CONFIG_TLS_STARTTLS;
}

/* RFC 9051 §6.2.1: before TLS on 143, LOGINDISABLED tells clients not to
 * send a password in clear. */
static const char *
capabilities(struct net_conn *c)
{
	return can_starttls(c) ?
	    "IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED" :
	    "IMAP4rev2 IMAP4rev1";
}

static void *
imap_session_open(struct net_conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	line_reader_init(&s->reader, net_conn_config(c)->line_length);
	net_conn_printf(c, "* OK [CAPABILITY %s] postern ready\r\n",
	    capabilities(c));
	return s;
}

/* Returns false once the session stops reading this buffer. */
static bool
imap_line(struct imap_session *s, const char *line, size_t len)
{
	struct net_conn *c = s->conn;
	const char *sp = memchr(line, ' ', len);
	int taglen = sp ? (int)(sp - line) : (int)len;
	const char *cmd = sp ? sp + 1 : line + len;
	int cmdlen = (int)(line + len - cmd);

	if (taglen == 0 || sp == NULL || cmdlen == 0) {
		net_conn_printf(c, "* BAD Expected a tag and a command\r\n");
		return true;
	}
	if (cmdlen == 10 && strncasecmp(cmd, "CAPABILITY", 10) == 0) {
		net_conn_printf(c, "* CAPABILITY %s\r\n%.*s OK CAPABILITY "
		    "completed\r\n", capabilities(c), taglen, line);
	} else if (cmdlen == 4 && strncasecmp(cmd, "NOOP", 4) == 0) {
		net_conn_printf(c, "%.*s OK NOOP completed\r\n", taglen, line);
	} else if (cmdlen == 6 && strncasecmp(cmd, "LOGOUT", 6) == 0) {
		net_conn_printf(c, "* BYE postern logging out\r\n%.*s OK "
		    "LOGOUT completed\r\n", taglen, line);
		net_conn_close(c);
		return false;
	} else if (cmdlen == 8 && strncasecmp(cmd, "STARTTLS", 8) == 0) {
		if (!can_starttls(c)) {
			net_conn_printf(c, "%.*s BAD TLS is already active or "
			    "not offered here\r\n", taglen, line);
			return true;
		}
		net_conn_printf(c, "%.*s OK Begin TLS negotiation now\r\n",
		    taglen, line);
		if (net_conn_starttls(c) < 0) {
			net_conn_close(c);
			return false;
		}
		line_reader_init(&s->reader, s->reader.max);
		return false;
	} else {
		net_conn_printf(c, "%.*s BAD Command not implemented\r\n",
		    taglen, line);
	}
	return true;
}

static void
imap_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct imap_session *s = arg;
	const char *line;
	size_t len;

	for (;;) {
		enum parse_rc rc = line_reader_next(&s->reader, in, &line,
		    &len);

		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			net_conn_printf(c, "* BAD Line too long\r\n");
			continue;
		}
		if (!imap_line(s, line, len))
			return;
	}
	line_reader_compact(&s->reader, in);
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

static void
imap_session_close(void *arg)
{
	free(arg);
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
	.refuse = imap_session_refuse,
};
