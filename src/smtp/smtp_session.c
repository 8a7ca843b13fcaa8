/*
 * smtp_session: the greeting, EHLO/HELO, STARTTLS, NOOP and QUIT. Mail
 * transactions (MAIL, RCPT, DATA, AUTH) are not implemented yet: they are
 * answered 502 until the SMTP issue (#5) replaces this placeholder.
 */
#include "smtp/smtp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/parse.h"
#include "lib/util.h"

struct smtp_session {
	struct net_conn *conn;
	struct line_reader reader;
};

static const char *
hostname(struct net_conn *c)
{
	return net_conn_config(c)->hostname;
}

static void *
smtp_session_open(struct net_conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	line_reader_init(&s->reader, net_conn_config(c)->line_length);
	/* RFC 5321 §4.3.1: the greeting names us. */
	net_conn_printf(c, "220 %s ESMTP postern\r\n", hostname(c));
	return s;
}

static bool
is_verb(const char *line, size_t len, const char *verb)
{
	size_t n = strlen(verb);

	return len >= n && strncasecmp(line, verb, n) == 0 &&
	    (len == n || line[n] == ' ');
}

static void
smtp_ehlo(struct smtp_session *s)
{
	struct net_conn *c = s->conn;
	bool can_starttls = !is_net_conn_tls(c) &&
	    net_conn_listener(c)->tls == CONFIG_TLS_STARTTLS;

	net_conn_printf(c, "250-%s\r\n", hostname(c));
	if (can_starttls)
		net_conn_printf(c, "250-STARTTLS\r\n");
	net_conn_printf(c, "250 ENHANCEDSTATUSCODES\r\n");
}

/* Returns false once the session is closing. */
static bool
smtp_line(struct smtp_session *s, const char *line, size_t len)
{
	struct net_conn *c = s->conn;

	if (is_verb(line, len, "EHLO")) {
		smtp_ehlo(s);
	} else if (is_verb(line, len, "HELO")) {
		net_conn_printf(c, "250 %s\r\n", hostname(c));
	} else if (is_verb(line, len, "NOOP")) {
		net_conn_printf(c, "250 2.0.0 OK\r\n");
	} else if (is_verb(line, len, "QUIT")) {
		net_conn_printf(c, "221 2.0.0 Bye\r\n");
		net_conn_close(c);
		return false;
	} else if (is_verb(line, len, "STARTTLS") && len == 8) {
		if (is_net_conn_tls(c) || net_conn_listener(c)->tls !=
		    CONFIG_TLS_STARTTLS) {
			net_conn_printf(c, "503 5.5.1 TLS is already active "
			    "or not offered here\r\n");
			return true;
		}
		net_conn_printf(c, "220 2.0.0 Ready to start TLS\r\n");
		if (net_conn_starttls(c) < 0) {
			net_conn_printf(c, "454 4.7.0 TLS not available\r\n");
			return true;
		}
		/* RFC 3207 §4.2: start over; nothing said before counts. */
		line_reader_init(&s->reader, s->reader.max);
		return false;
	} else {
		net_conn_printf(c, "502 5.5.1 Command not implemented\r\n");
	}
	return true;
}

static void
smtp_session_input(void *arg, struct net_conn *c, struct buf *in)
{
	struct smtp_session *s = arg;
	const char *line;
	size_t len;

	for (;;) {
		enum parse_rc rc = line_reader_next(&s->reader, in, &line,
		    &len);

		if (rc == PARSE_MORE)
			break;
		if (rc == PARSE_ERROR) {
			net_conn_printf(c, "500 5.5.2 Line too long\r\n");
			continue;
		}
		if (!smtp_line(s, line, len))
			return;
	}
	line_reader_compact(&s->reader, in);
}

static void
smtp_session_timeout(void *arg, struct net_conn *c)
{
	(void)arg;
	/* RFC 5321 §4.5.3.2 allows closing; 421 says why. */
	net_conn_printf(c, "421 4.4.2 %s Idle timeout, closing connection"
	    "\r\n", hostname(c));
}

static void
smtp_session_shutdown(void *arg, struct net_conn *c)
{
	(void)arg;
	net_conn_printf(c, "421 4.3.2 %s Server shutting down, try again "
	    "later\r\n", hostname(c));
}

static void
smtp_session_close(void *arg)
{
	free(arg);
}

static void
smtp_session_refuse(struct net_conn *c, const char *reason)
{
	net_conn_printf(c, "421 4.7.0 %s %s\r\n", hostname(c), reason);
}

const struct net_session_ops smtp_session_ops = {
	.open = smtp_session_open,
	.input = smtp_session_input,
	.timeout = smtp_session_timeout,
	.shutdown = smtp_session_shutdown,
	.close = smtp_session_close,
	.refuse = smtp_session_refuse,
};
