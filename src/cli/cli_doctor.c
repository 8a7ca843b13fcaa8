/*
 * cli_doctor: `postern doctor` walks the troubleshooting steps of the
 * hosting guides on this server and prints one line per finding, ✓, ⚠ or
 * ✗ with the fix: the configuration, each listener (connected to on its
 * address and port: does it greet in its protocol, and is its kind of
 * TLS the one its port stands for — the classic mistake is STARTTLS on
 * 465 or implicit TLS on 587, spotted from the first bytes), the
 * certificates (chain, names, days left), the DNS records of every domain
 * (as `postern dns check`), the outbound queue, the store, and the disk.
 * `doctor client` does the same from a mail client's side against any
 * server, finding it as clients do (autoconfig, Autodiscover, SRV,
 * guessed names; cli_autoconfig.c reads the answers).
 * Exit 0 only without ✗.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "acme/acme.h"
#include "lib/config.h"
#include "lib/util.h"
#include "net/net.h"
#include "queue/queue.h"
#include "store/store.h"

static const char usage[] = "postern doctor [--ip ADDR ...] [-c FILE] "
    "[--json] | doctor client ADDRESS [--server HOST] [--port-scan] "
    "[--json]";

#define PROBE_TIMEOUT_MS 3000
#define GREETING_MAX 512

/* Ends a report: the JSON object (--json) or the summary line. Returns
 * the exit status: ok only without a problem. */
static int
report_end(struct cli_report *rep)
{
	if (rep->items != NULL) {
		json_t *j = json_pack("{s:b,s:i,s:i,s:O}", "ok",
		    rep->fails == 0, "problems", rep->fails, "warnings",
		    rep->warns, "checks", rep->items);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		json_decref(rep->items);
		rep->items = NULL;
	} else {
		printf("%d problem%s, %d warning%s\n", rep->fails,
		    rep->fails == 1 ? "" : "s", rep->warns,
		    rep->warns == 1 ? "" : "s");
	}
	return rep->fails == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- probing a port -------------------------------------------------- */

/* Connects to addr:port within the probe timeout; the socket then has
 * read and write timeouts. Returns the socket, or -1 with err set. */
static int
probe_connect(const char *addr, uint16_t port, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	char service[8];
	struct timeval tv = { PROBE_TIMEOUT_MS / 1000, 0 };
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, rc, soerr = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	rc = getaddrinfo(addr, service, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, PROBE_TIMEOUT_MS);
		if (rc == 0) {
			snprintf(err, errlen, "no answer within %d s (a "
			    "firewall dropping the connection?)",
			    PROBE_TIMEOUT_MS / 1000);
			close(fd);
			return -1;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		rc = soerr == 0 ? 0 : -1;
		errno = soerr;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Reads what the server sends first, waiting at most ms. Returns the
 * number of bytes (0: silence, the server waits for us), or -1 when the
 * connection ended. */
static ssize_t
first_bytes(int fd, char *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	n = recv(fd, buf, len - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Reads one reply line (or the last line of an SMTP multi-line reply)
 * through TLS when t is set. Returns 0 with the line in buf, or -1. */
static int
line_read(int fd, struct net_tls_sock *t, char *buf, size_t len,
    bool is_smtp)
{
	size_t o = 0;

	for (;;) {
		char c;
		ssize_t n = t != NULL ? net_tls_sock_read(t, &c, 1) :
		    recv(fd, &c, 1, 0);

		if (n <= 0)
			return -1;
		if (c == '\n') {
			buf[o] = '\0';
			if (o > 0 && buf[o - 1] == '\r')
				buf[--o] = '\0';
			/* "250-..." continues; "250 ..." ends. */
			if (is_smtp && o >= 4 && buf[3] == '-') {
				o = 0;
				continue;
			}
			return 0;
		}
		if (o + 1 < len)
			buf[o++] = c;
	}
}

static int
line_write(int fd, struct net_tls_sock *t, const char *s)
{
	size_t n = strlen(s);

	if (t != NULL)
		return net_tls_sock_write(t, s, n) == (ssize_t)n ? 0 : -1;
	return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static bool
is_greeting(enum config_proto proto, const char *g)
{
	switch (proto) {
	case CONFIG_PROTO_SMTP:
	case CONFIG_PROTO_SUBMISSION:
		return strncmp(g, "220", 3) == 0;
	case CONFIG_PROTO_IMAP:
		return strncmp(g, "* OK", 4) == 0 ||
		    strncmp(g, "* PREAUTH", 9) == 0;
	case CONFIG_PROTO_POP3:
		return strncmp(g, "+OK", 3) == 0;
	default:
		return true;
	}
}

/* Sends the protocol's STARTTLS and waits for its go-ahead (RFC 3207,
 * RFC 9051 §6.2.1, RFC 2595 §4). Returns 0, or -1 with the reply in
 * buf. */
static int
probe_starttls(int fd, enum config_proto proto, char *buf, size_t len)
{
	switch (proto) {
	case CONFIG_PROTO_SMTP:
	case CONFIG_PROTO_SUBMISSION:
		if (line_write(fd, NULL, "EHLO doctor.invalid\r\n") < 0 ||
		    line_read(fd, NULL, buf, len, true) < 0 ||
		    strncmp(buf, "250", 3) != 0 ||
		    line_write(fd, NULL, "STARTTLS\r\n") < 0 ||
		    line_read(fd, NULL, buf, len, true) < 0)
			return -1;
		return strncmp(buf, "220", 3) == 0 ? 0 : -1;
	case CONFIG_PROTO_IMAP:
		if (line_write(fd, NULL, "d1 STARTTLS\r\n") < 0)
			return -1;
		do {
			if (line_read(fd, NULL, buf, len, false) < 0)
				return -1;
		} while (buf[0] == '*');
		return strncmp(buf, "d1 OK", 5) == 0 ? 0 : -1;
	case CONFIG_PROTO_POP3:
		if (line_write(fd, NULL, "STLS\r\n") < 0 ||
		    line_read(fd, NULL, buf, len, false) < 0)
			return -1;
		return strncmp(buf, "+OK", 3) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

/* What a port stands for (RFC 8314 §3.3, RFC 6409, RFC 8314 §7). */
static enum config_tls
port_tls(uint16_t port, bool *is_known)
{
	*is_known = true;
	switch (port) {
	case 465:
	case 993:
	case 995:
		return CONFIG_TLS_IMPLICIT;
	case 25:
	case 587:
	case 143:
	case 110:
	case 2525:
		return CONFIG_TLS_STARTTLS;
	default:
		*is_known = false;
		return CONFIG_TLS_NONE;
	}
}

static void
first_line(char *s)
{
	s[strcspn(s, "\r\n")] = '\0';
	if (strlen(s) > 80)
		strcpy(s + 77, "...");
}

static void
listener_check(const struct config *cfg, const struct config_listener *l,
    struct cli_report *rep)
{
	const char *addr = l->address;
	char what[160], err[256], buf[GREETING_MAX], text[768];
	struct net_tls_sock *t = NULL;
	enum config_tls want;
	bool is_known, is_plain;
	ssize_t n;
	int fd;

	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	else if (strcmp(addr, "::") == 0)
		addr = "::1";
	snprintf(what, sizeof(what), "listener %s (%s, %s:%u, tls %s)",
	    l->name, config_proto_name(l->proto), l->address,
	    (unsigned)l->port, config_tls_name(l->tls));
	if (l->proto == CONFIG_PROTO_HTTP)
		return;
	if (l->port == 0) {
		cli_report_line(rep, CLI_MARK_WARN, what, NULL, NULL, NULL,
		    "port 0 takes any free port at each start: clients "
		    "cannot find it; set a port.");
		return;
	}
	want = port_tls(l->port, &is_known);
	fd = probe_connect(addr, l->port, err, sizeof(err));
	if (fd < 0) {
		snprintf(text, sizeof(text), "cannot connect to %s:%u: %s. Is "
		    "postern serve running (and was it restarted after the "
		    "listener was added)?", addr, (unsigned)l->port, err);
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    text);
		return;
	}
	/* A server of implicit TLS says nothing until the client's
	 * handshake; one of STARTTLS or none greets in plain text at once. */
	n = first_bytes(fd, buf, sizeof(buf), l->tls == CONFIG_TLS_IMPLICIT ?
	    1500 : PROBE_TIMEOUT_MS);
	is_plain = n > 0;
	if (n < 0) {
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    "the connection was closed at once (too many connections "
		    "from here? see the server's log).");
		goto out;
	}
	if (is_plain)
		first_line(buf);
	if (l->tls == CONFIG_TLS_IMPLICIT && is_plain) {
		snprintf(text, sizeof(text), "configured for implicit TLS, but "
		    "greets in plain text (\"%s\"): another program holds the "
		    "port?", buf);
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    text);
		goto out;
	}
	if (l->tls != CONFIG_TLS_IMPLICIT && !is_plain) {
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    "says nothing: it waits for a TLS handshake (implicit TLS), "
		    "but is configured for plain text first.");
		goto out;
	}
	if (l->tls == CONFIG_TLS_IMPLICIT) {
		t = net_tls_sock_new(fd, cfg->hostname, err, sizeof(err));
		if (t == NULL || line_read(fd, t, buf, sizeof(buf), false) < 0) {
			snprintf(text, sizeof(text), "the TLS handshake or the "
			    "greeting after it failed: %s.", t == NULL ? err :
			    "no greeting");
			cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL,
			    NULL, text);
			goto out;
		}
		first_line(buf);
	}
	if (!is_greeting(l->proto, buf)) {
		snprintf(text, sizeof(text), "greets with \"%s\", not as %s "
		    "does: is another program on the port?", buf,
		    config_proto_name(l->proto));
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    text);
		goto out;
	}
	if (is_known && want != l->tls && !(l->port == 25 &&
	    l->tls == CONFIG_TLS_NONE)) {
		if (want == CONFIG_TLS_IMPLICIT)
			snprintf(text, sizeof(text), "port %u is for implicit "
			    "TLS (RFC 8314): clients start with a TLS "
			    "handshake and fail on this plain-text greeting "
			    "(\"%s\"). Fix: set tls = implicit in [listener "
			    "%s] (or move it to the STARTTLS port).",
			    (unsigned)l->port, buf, l->name);
		else
			snprintf(text, sizeof(text), "port %u is for STARTTLS "
			    "(RFC 6409, RFC 3207, RFC 2595): clients wait for a "
			    "plain-text greeting first, but this listener %s. "
			    "Fix: set tls = starttls in [listener %s].",
			    (unsigned)l->port, l->tls == CONFIG_TLS_IMPLICIT ?
			    "waits for a TLS handshake" : "offers no TLS",
			    l->name);
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    text);
		goto out;
	}
	if (l->tls == CONFIG_TLS_STARTTLS) {
		char reply[GREETING_MAX];

		if (probe_starttls(fd, l->proto, reply, sizeof(reply)) < 0 ||
		    (t = net_tls_sock_new(fd, cfg->hostname, err,
		    sizeof(err))) == NULL) {
			first_line(reply);
			cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL,
			    NULL, "greets, but STARTTLS fails.");
			goto out;
		}
	}
	if (l->tls == CONFIG_TLS_NONE && l->proto != CONFIG_PROTO_SMTP) {
		snprintf(text, sizeof(text), "greets (\"%s\") without TLS: "
		    "clients refuse or send passwords in clear; set tls = "
		    "starttls or implicit.", buf);
		cli_report_line(rep, CLI_MARK_WARN, what, NULL, NULL, NULL,
		    text);
		goto out;
	}
	snprintf(text, sizeof(text), "answers: \"%s\"%s%s.", buf,
	    t != NULL ? ", TLS " : "", t != NULL ? net_tls_sock_version(t) :
	    "");
	cli_report_line(rep, CLI_MARK_OK, what, NULL, NULL, NULL, text);
out:
	net_tls_sock_free(&t);
	close(fd);
}

/* ---- clock ----------------------------------------------------------- */

/* The local clock against the ACME server's Date header: orders, JWS
 * nonces and every certificate's notBefore/notAfter are judged by clocks
 * (RFC 8555 §6.5, RFC 5280 §4.1.2.5). Without [acme] no network is used
 * for it. */
static void
clock_check(const struct config *cfg, struct cli_report *rep)
{
	char err[512], text[768];
	int64_t date, skew;
	enum cli_mark mark;

	if (!cfg->is_acme) {
		cli_report_line(rep, CLI_MARK_OK, "clock", NULL, NULL, NULL,
		    "not compared: [acme] is off, and doctor asks no other "
		    "server the time (keep NTP running).");
		return;
	}
	if (acme_server_date(cfg, &date, err, sizeof(err)) < 0) {
		snprintf(text, sizeof(text), "cannot ask the ACME server the "
		    "time (%s): postern cannot renew its certificate either "
		    "while it cannot reach %s.", err, cfg->acme_directory);
		cli_report_line(rep, CLI_MARK_WARN, "clock", NULL, NULL, NULL,
		    text);
		return;
	}
	skew = (int64_t)time(NULL) - date;
	if (skew >= -60 && skew <= 60) {
		mark = CLI_MARK_OK;
		snprintf(text, sizeof(text), "within %lld s of the ACME "
		    "server's Date.", (long long)(skew < 0 ? -skew : skew));
	} else {
		mark = skew >= -300 && skew <= 300 ? CLI_MARK_WARN :
		    CLI_MARK_FAIL;
		snprintf(text, sizeof(text), "%lld s %s the ACME server's "
		    "Date: %s Run NTP (timedatectl set-ntp true, or chrony).",
		    (long long)(skew < 0 ? -skew : skew),
		    skew < 0 ? "behind" : "ahead of",
		    mark == CLI_MARK_FAIL ? "certificate orders and TLS "
		    "validity checks fail with a clock this far off." :
		    "close to where orders and TLS validity checks fail.");
	}
	cli_report_line(rep, mark, "clock", NULL, NULL, NULL, text);
}

/* ---- certificates ---------------------------------------------------- */

static void
certs_check(struct cli_admin *ad, char **domains, size_t ndomains,
    struct cli_report *rep)
{
	const struct config *cfg = ad->cfg;
	const char *names[32];
	char *owned[32];
	size_t nnames = 0;
	bool covered[32] = { false };

	names[nnames++] = cfg->hostname;
	owned[0] = NULL;
	for (size_t i = 0; i < ndomains && nnames < 32; i++) {
		char *name = xasprintf("mail.%s", domains[i]);
		bool is_dup = false;

		for (size_t j = 0; j < nnames; j++)
			is_dup |= strcasecmp(names[j], name) == 0;
		if (is_dup) {
			free(name);
			continue;
		}
		owned[nnames] = name;
		names[nnames] = name;
		nnames++;
	}
	/* ACME's certificate, once it exists, is the one net serves on
	 * every TLS listener (acme.h); the configured ones stay as the
	 * fallback until then. */
	char *acme_cert = cfg->is_acme ?
	    xasprintf("%s/acme/cert.pem", cfg->data_dir) : NULL;
	bool has_acme = acme_cert != NULL && access(acme_cert, F_OK) == 0;

	for (size_t c = 0; c < cfg->ncerts + (has_acme ? 1 : 0); c++) {
		struct net_cert_report r;
		char what[600], err[256], text[1024];
		enum cli_mark mark = CLI_MARK_OK;
		bool is_acme_cert = c == cfg->ncerts;
		const char *file = is_acme_cert ? acme_cert :
		    cfg->certs[c].cert_file;

		if (is_acme_cert)
			snprintf(what, sizeof(what), "certificate acme (%s, "
			    "served by the TLS listeners)", file);
		else
			snprintf(what, sizeof(what), "certificate %s (%s%s)",
			    cfg->certs[c].name, file, has_acme ? ", not "
			    "served while the ACME one exists" : "");
		if (net_cert_file_check(file, names, nnames,
		    &r, err, sizeof(err)) < 0) {
			cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL,
			    NULL, err);
			continue;
		}
		for (size_t i = 0; i < nnames && (is_acme_cert || !has_acme);
		    i++)
			covered[i] |= !(r.names_missing & (1u << i));
		if (r.days_left < 0) {
			mark = CLI_MARK_FAIL;
			snprintf(text, sizeof(text), "expired %ld days ago: "
			    "clients refuse it. %s", -r.days_left,
			    is_acme_cert ? "postern renews it itself: look "
			    "for acme.failed in the log." : "Renew it (certbot "
			    "renew) and reload (kill -HUP).");
		} else if (r.is_not_yet_valid) {
			mark = CLI_MARK_FAIL;
			snprintf(text, sizeof(text), "not valid yet: is the "
			    "clock right?");
		} else if (r.is_self_signed) {
			mark = CLI_MARK_WARN;
			snprintf(text, sizeof(text), "self-signed (names %s; "
			    "%ld days left): clients warn or refuse until "
			    "their users accept it; a certificate from Let's "
			    "Encrypt avoids that.", r.names, r.days_left);
		} else if (!r.is_chain_ok) {
			mark = CLI_MARK_FAIL;
			snprintf(text, sizeof(text), "the chain does not verify "
			    "(%s): serve the full chain (fullchain.pem, not "
			    "cert.pem).", r.verify_text);
		} else if (r.days_left < 14) {
			mark = CLI_MARK_WARN;
			snprintf(text, sizeof(text), "expires in %ld days: is "
			    "renewal running?", r.days_left);
		} else {
			snprintf(text, sizeof(text), "valid, names %s, %ld days "
			    "left.", r.names, r.days_left);
		}
		cli_report_line(rep, mark, what, NULL, NULL, NULL, text);
	}
	free(acme_cert);
	for (size_t i = 0; i < nnames; i++) {
		char what[300], text[512];

		snprintf(what, sizeof(what), "certificate name %s", names[i]);
		if (covered[i]) {
			cli_report_line(rep, CLI_MARK_OK, what, NULL, NULL, NULL,
			    "covered by a certificate.");
			continue;
		}
		if (i == 0)
			snprintf(text, sizeof(text), "no certificate names the "
			    "server's hostname: clients and MTA-STS senders "
			    "refuse the connection. Get one for %s.", names[i]);
		else
			snprintf(text, sizeof(text), "no certificate names %s: "
			    "clients that guess it get a name warning. Add it "
			    "to the certificate, or make sure clients use %s.",
			    names[i], cfg->hostname);
		cli_report_line(rep, i == 0 ? CLI_MARK_FAIL : CLI_MARK_WARN,
		    what, NULL, NULL, NULL, text);
	}
	for (size_t i = 1; i < nnames; i++)
		free(owned[i]);
}

/* ---- queue, store, disk --------------------------------------------- */

static void
queue_check(struct cli_admin *ad, struct cli_report *rep)
{
	struct store_queue_entry *list = NULL;
	enum store_err serr;
	size_t n = 0, count = 0;
	const struct store_queue_entry *oldest = NULL;
	char text[1024];
	enum cli_mark mark = CLI_MARK_OK;

	if (store_queue_list(ad->store, &list, &n, &serr) < 0) {
		cli_report_line(rep, CLI_MARK_FAIL, "queue", NULL, NULL, NULL,
		    "cannot read the queue.");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (list[i].is_report)
			continue;
		count++;
		if (oldest == NULL || list[i].created < oldest->created)
			oldest = &list[i];
	}
	if (oldest == NULL) {
		snprintf(text, sizeof(text), "empty.");
	} else {
		long age = (long)(time(NULL) - oldest->created);

		snprintf(text, sizeof(text), "%zu message%s waiting; the oldest "
		    "(to %s) for %ld h %ld min%s%s%s", count, count == 1 ? "" :
		    "s", oldest->rcpt, age / 3600, age % 3600 / 60,
		    oldest->last_reply != NULL ? ", last reply: " : "",
		    oldest->last_reply != NULL ? oldest->last_reply : "",
		    age > 3600 ? ". See postern queue list." : ".");
		if (age > 3600)
			mark = CLI_MARK_WARN;
	}
	cli_report_line(rep, mark, "queue", NULL, NULL, NULL, text);
	store_queue_list_free(&list, n);
}

static void
store_line(void *arg, const char *line)
{
	char **first = arg;

	if (*first == NULL)
		*first = xstrdup(line);
}

static void
disk_check(struct cli_admin *ad, struct cli_report *rep)
{
	struct statvfs sv;
	char text[512], what[300];
	double free_pct, inode_pct;
	enum cli_mark mark = CLI_MARK_OK;
	unsigned long long avail;

	snprintf(what, sizeof(what), "disk %s", ad->cfg->data_dir);
	if (statvfs(ad->cfg->data_dir, &sv) < 0) {
		snprintf(text, sizeof(text), "cannot stat: %s", strerror(errno));
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL, text);
		return;
	}
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	free_pct = sv.f_blocks > 0 ? 100.0 * (double)sv.f_bavail /
	    (double)sv.f_blocks : 100.0;
	inode_pct = sv.f_files > 0 ? 100.0 * (double)sv.f_favail /
	    (double)sv.f_files : 100.0;
	if (free_pct < 5 || inode_pct < 5 || avail < 100ULL << 20)
		mark = CLI_MARK_FAIL;
	else if (free_pct < 15 || inode_pct < 15)
		mark = CLI_MARK_WARN;
	snprintf(text, sizeof(text), "%.1f GB free (%.0f%%), %.0f%% of inodes "
	    "free%s", (double)avail / 1e9, free_pct, inode_pct,
	    mark == CLI_MARK_FAIL ? ": mail is refused with 452 when it "
	    "runs out; free space now." : mark == CLI_MARK_WARN ?
	    ": getting full." : ".");
	cli_report_line(rep, mark, what, NULL, NULL, NULL, text);
}

/* ---- postern doctor client ADDRESS ------------------------------------ */

static const char client_usage[] = "postern doctor client ADDRESS "
    "[--server HOST] [--port-scan] [--ca-file FILE] [--resolver ADDR "
    "[--resolver-port N]] [--json]  (password on stdin or the terminal)";

/* Servers read from one autoconfiguration answer, at most. */
#define DISCOVERED_MAX 16

/* One port to probe: where (host for SNI and the certificate, addr to
 * connect to), what it should speak, and who said so (NULL: the port's
 * number, RFC 8314). */
struct client_target {
	const char *host;
	const char *addr;
	uint16_t port;
	enum config_proto proto;
	enum config_tls tls;
	const char *source;
};

static const struct {
	uint16_t port;
	enum config_proto proto;
	enum config_tls tls;
	bool is_scan_only;
} client_ports[] = {
	{ 25, CONFIG_PROTO_SMTP, CONFIG_TLS_STARTTLS, false },
	{ 465, CONFIG_PROTO_SUBMISSION, CONFIG_TLS_IMPLICIT, false },
	{ 587, CONFIG_PROTO_SUBMISSION, CONFIG_TLS_STARTTLS, false },
	{ 2525, CONFIG_PROTO_SUBMISSION, CONFIG_TLS_STARTTLS, true },
	{ 143, CONFIG_PROTO_IMAP, CONFIG_TLS_STARTTLS, false },
	{ 993, CONFIG_PROTO_IMAP, CONFIG_TLS_IMPLICIT, false },
	{ 110, CONFIG_PROTO_POP3, CONFIG_TLS_STARTTLS, false },
	{ 995, CONFIG_PROTO_POP3, CONFIG_TLS_IMPLICIT, false },
};

/* base64 of "\0user\0password" (RFC 4616) for AUTH PLAIN. */
static char *
plain_b64(const char *user, const char *pw)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";
	size_t ul = strlen(user), pl = strlen(pw), n = ul + pl + 2, o = 0;
	unsigned char *raw = xmalloc(n);
	char *out = xmalloc((n + 2) / 3 * 4 + 1);

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, pw, pl);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < n ?
		    (uint32_t)raw[i + 1] << 8 : 0) | (i + 2 < n ? raw[i + 2] : 0);

		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	secret_wipe(raw, n);
	free(raw);
	return out;
}

/* A quoted IMAP string of s; NULL when s holds what a quoted string
 * cannot (CR, LF, NUL). */
static char *
imap_quote(const char *s)
{
	char *out = xmalloc(strlen(s) * 2 + 3);
	size_t o = 0;

	out[o++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			free(out);
			return NULL;
		}
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* Logs in over the TLS session t; returns true, or false with the
 * server's refusal in reply. */
static bool
client_login(int fd, struct net_tls_sock *t, enum config_proto proto,
    const char *user, const char *pw, char *reply, size_t len)
{
	char *cmd, *a, *b;
	bool is_ok = false;

	switch (proto) {
	case CONFIG_PROTO_SMTP:
	case CONFIG_PROTO_SUBMISSION:
		a = plain_b64(user, pw);
		cmd = xasprintf("EHLO doctor.invalid\r\nAUTH PLAIN %s\r\n", a);
		secret_wipe(a, strlen(a));
		free(a);
		if (line_write(fd, t, cmd) == 0 &&
		    line_read(fd, t, reply, len, true) == 0 &&
		    line_read(fd, t, reply, len, true) == 0)
			is_ok = strncmp(reply, "235", 3) == 0;
		break;
	case CONFIG_PROTO_IMAP:
		a = imap_quote(user);
		b = imap_quote(pw);
		cmd = a != NULL && b != NULL ? xasprintf("d2 LOGIN %s %s\r\n",
		    a, b) : xstrdup("");
		if (b != NULL)
			secret_wipe(b, strlen(b));
		free(a);
		free(b);
		if (line_write(fd, t, cmd) == 0) {
			do {
				if (line_read(fd, t, reply, len, false) < 0)
					break;
			} while (reply[0] == '*');
			is_ok = strncmp(reply, "d2 OK", 5) == 0;
		}
		break;
	default:
		cmd = xasprintf("USER %s\r\nPASS %s\r\n", user, pw);
		if (line_write(fd, t, cmd) == 0 &&
		    line_read(fd, t, reply, len, false) == 0 &&
		    strncmp(reply, "+OK", 3) == 0) {
			if (line_read(fd, t, reply, len, false) == 0)
				is_ok = strncmp(reply, "+OK", 3) == 0;
			else
				snprintf(reply, len, "(no answer to PASS)");
		}
		break;
	}
	secret_wipe(cmd, strlen(cmd));
	free(cmd);
	first_line(reply);
	return is_ok;

}

/* MAIL FROM and RCPT TO an outside address; true when the RCPT was
 * taken. The transaction is reset, nothing is sent. */
static bool
is_relay_taken(int fd, struct net_tls_sock *t, const char *from,
    char *reply, size_t len)
{
	char *cmd = xasprintf("MAIL FROM:<%s>\r\n", from);
	bool is_taken = false;

	if (line_write(fd, t, cmd) == 0 &&
	    line_read(fd, t, reply, len, true) == 0 &&
	    strncmp(reply, "250", 3) == 0 &&
	    line_write(fd, t, "RCPT TO:<postern-doctor@example.com>\r\n") ==
	    0 && line_read(fd, t, reply, len, true) == 0)
		is_taken = reply[0] == '2';
	free(cmd);
	first_line(reply);
	{
		char junk[GREETING_MAX];

		if (line_write(fd, t, "RSET\r\n") == 0)
			line_read(fd, t, junk, sizeof(junk), true);
	}
	return is_taken;
}

/* A failed login is answered late on purpose (lockout delays): wait for
 * it longer than for a greeting. */
static void
login_timeout(int fd)
{
	struct timeval tv = { 30, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void
client_port(const struct client_target *tg, const char *user, const char *pw,
    const char *ca_file, struct cli_report *rep)
{
	const char *host = tg->host;
	uint16_t port = tg->port;
	enum config_proto proto = tg->proto;
	char what[320], err[256], buf[GREETING_MAX], reply[GREETING_MAX],
	    text[1400];
	struct net_tls_sock *t = NULL;
	struct net_cert_report cr;
	const char *kind, *names[1] = { host };
	enum cli_mark mark = CLI_MARK_OK;
	ssize_t n;
	int fd;

	snprintf(what, sizeof(what), "port %u (%s)%s%s", (unsigned)port,
	    proto == CONFIG_PROTO_SMTP ? "smtp" : config_proto_name(proto),
	    tg->source != NULL ? " on " : "", tg->source != NULL ? host : "");
	fd = probe_connect(tg->addr, port, err, sizeof(err));
	if (fd < 0) {
		snprintf(text, sizeof(text), "no answer from %s:%u: %s.", host,
		    (unsigned)port, err);
		cli_report_line(rep, CLI_MARK_WARN, what, NULL, NULL, NULL, text);
		return;
	}
	n = first_bytes(fd, buf, sizeof(buf), 1500);
	if (n < 0) {
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    "the connection was closed at once.");
		goto out;
	}
	if (n == 0) {
		kind = "implicit TLS";
		t = net_tls_sock_new(fd, host, err, sizeof(err));
		if (t == NULL || line_read(fd, t, buf, sizeof(buf), false) < 0) {
			snprintf(text, sizeof(text), "silent, and no TLS "
			    "handshake either: %s.", t == NULL ? err :
			    "no greeting after it");
			cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL,
			    NULL, text);
			goto out;
		}
	} else {
		kind = "STARTTLS";
		first_line(buf);
		if (probe_starttls(fd, proto, reply, sizeof(reply)) < 0 ||
		    (t = net_tls_sock_new(fd, host, err, sizeof(err))) ==
		    NULL) {
			snprintf(text, sizeof(text), "greets in plain text "
			    "(\"%s\") but offers no working STARTTLS: passwords "
			    "would go in clear.", buf);
			cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL,
			    NULL, text);
			goto out;
		}
	}
	first_line(buf);
	if (!is_greeting(proto, buf)) {
		snprintf(text, sizeof(text), "%s, but the greeting \"%s\" is "
		    "not %s's.", kind, buf, config_proto_name(proto));
		cli_report_line(rep, CLI_MARK_FAIL, what, NULL, NULL, NULL,
		    text);
		goto out;
	}
	if (tg->tls != (n == 0 ? CONFIG_TLS_IMPLICIT : CONFIG_TLS_STARTTLS))
		mark = CLI_MARK_FAIL;
	if (tg->source != NULL && tg->tls == CONFIG_TLS_NONE)
		snprintf(reply, sizeof(reply), ", but %s tells clients to use "
		    "no TLS here: their passwords would go in clear",
		    tg->source);
	else if (mark == CLI_MARK_FAIL && tg->source != NULL)
		snprintf(reply, sizeof(reply), ", not the %s that %s names "
		    "for this port: clients set up from it fail",
		    tg->tls == CONFIG_TLS_IMPLICIT ? "implicit TLS (SSL)" :
		    "STARTTLS", tg->source);
	else if (mark == CLI_MARK_FAIL)
		snprintf(reply, sizeof(reply), ", not the kind this port "
		    "stands for: clients set for the port fail");
	else
		reply[0] = '\0';
	net_tls_sock_cert(t, names, 1, ca_file, &cr);
	snprintf(text, sizeof(text), "%s (%s)%s; certificate %s", kind,
	    net_tls_sock_version(t), reply,
	    cr.days_left < 0 ? "expired" : cr.names_missing ?
	    "does not name the host" : cr.is_self_signed ? "self-signed" :
	    !cr.is_chain_ok ? cr.verify_text : "valid");
	if (cr.days_left < 0 || cr.names_missing)
		mark = CLI_MARK_FAIL;
	else if (cr.is_self_signed || !cr.is_chain_ok)
		mark = mark == CLI_MARK_OK ? CLI_MARK_WARN : mark;
	if (proto == CONFIG_PROTO_SMTP) {
		/* Port 25 takes mail for the server's domains without a
		 * login; mail for the outside must be refused (RFC 5321
		 * §3.6.2 relay). */
		char junk[GREETING_MAX];

		line_write(fd, t, "EHLO doctor.invalid\r\n");
		line_read(fd, t, junk, sizeof(junk), true);
		if (is_relay_taken(fd, t, "", reply, sizeof(reply))) {
			mark = CLI_MARK_FAIL;
			snprintf(text + strlen(text), sizeof(text) -
			    strlen(text), "; OPEN RELAY: mail to an outside "
			    "address was taken without a login");
		} else {
			snprintf(text + strlen(text), sizeof(text) -
			    strlen(text), "; relay without login refused "
			    "(\"%s\")", reply);
		}
	} else if ((login_timeout(fd), reply[0] = '\0',
	    client_login(fd, t, proto, user, pw, reply, sizeof(reply)))) {
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "; login as %s works", user);
		if (proto == CONFIG_PROTO_SUBMISSION) {
			bool is_taken = is_relay_taken(fd, t, user, reply,
			    sizeof(reply));

			snprintf(text + strlen(text), sizeof(text) -
			    strlen(text), is_taken ? "; sending to an outside "
			    "address is accepted" : "; sending to an outside "
			    "address is refused after login (\"%s\")", reply);
			if (!is_taken)
				mark = CLI_MARK_FAIL;
		}
	} else {
		mark = CLI_MARK_FAIL;
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "; login as %s refused: \"%s\"%s", user, reply,
		    strstr(reply, "locked") != NULL ||
		    strstr(reply, "LOCKED") != NULL ? " (the account is "
		    "locked after failed logins: wait, or check the "
		    "password)" : strstr(reply, "disabled") != NULL ||
		    strstr(reply, "CONTACTADMIN") != NULL ? " (the account or "
		    "this protocol is disabled for it)" : strstr(reply,
		    "AUTHENTICATIONFAILED") != NULL || strncmp(reply, "535",
		    3) == 0 || strncmp(reply, "-ERR", 4) == 0 ? " (wrong "
		    "user name or password; an app password if the account "
		    "has two-factor login)" : "");
	}
	strncat(text, ".", sizeof(text) - strlen(text) - 1);
	cli_report_line(rep, mark, what, NULL, NULL, NULL, text);
out:
	net_tls_sock_free(&t);
	close(fd);
}

/* The address to connect to for host: its A record through lk (the
 * resolver discovery used), else host itself for getaddrinfo(). A new
 * string. */
static char *
host_addr(struct queue_lookup *lk, const char *host)
{
	char **rrs = NULL;
	size_t n = 0;
	char *addr;

	if (lk == NULL || queue_lookup_query(lk, host, "A", &rrs, &n) !=
	    QUEUE_LOOKUP_OK || n == 0)
		return xstrdup(host);
	addr = xstrdup(rrs[0]);
	queue_lookup_rrs_free(&rrs, n);
	return addr;
}

/* Whether host resolves through lk (A or AAAA). */
static bool
is_resolving(struct queue_lookup *lk, const char *host)
{
	char **rrs = NULL;
	size_t n = 0;
	bool is_found = false;

	for (int k = 0; k < 2 && !is_found; k++) {
		if (queue_lookup_query(lk, host, k == 0 ? "A" : "AAAA", &rrs,
		    &n) == QUEUE_LOOKUP_OK && n > 0)
			is_found = true;
		queue_lookup_rrs_free(&rrs, n);
		rrs = NULL;
		n = 0;
	}
	return is_found;
}

/* An HTTPS request as a mail client makes it for its settings: GET, or
 * POST of body (text/xml), to https://host/target on port 443, HTTP/1.0
 * so that the answer is not chunked. The certificate must be valid for
 * host (clients drop an answer over one they do not trust, and so do we).
 * Returns the body of a 200 answer (caller frees, NUL-terminated, at most
 * CLI_AUTOCONFIG_MAX bytes), or NULL with why in err. */
static char *
https_fetch(struct queue_lookup *lk, const char *host, const char *target,
    const char *body, const char *ca_file, size_t *len_out, char *err,
    size_t errlen)
{
	size_t cap = CLI_AUTOCONFIG_MAX + 8192, n = 0;
	char *addr, *req, *resp = NULL, *hdr_end;
	const char *names[1] = { host };
	struct net_tls_sock *t = NULL;
	struct net_cert_report cr;
	char e[256];
	ssize_t k;
	int fd, status;

	if (!is_resolving(lk, host)) {
		snprintf(err, errlen, "%s does not resolve", host);
		return NULL;
	}
	addr = host_addr(lk, host);
	fd = probe_connect(addr, 443, e, sizeof(e));
	free(addr);
	if (fd < 0) {
		snprintf(err, errlen, "nothing answers on %s:443 (%s)", host, e);
		return NULL;
	}
	if ((t = net_tls_sock_new(fd, host, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "no TLS on %s:443 (%s)", host, e);
		goto out;
	}
	net_tls_sock_cert(t, names, 1, ca_file, &cr);
	if (cr.days_left < 0 || cr.names_missing || !cr.is_chain_ok) {
		snprintf(err, errlen, "%s:443 answers with a certificate "
		    "clients do not trust for that name (%s): they ignore the "
		    "answer", host, cr.days_left < 0 ? "expired" :
		    cr.names_missing ? "it does not name the host" :
		    cr.verify_text);
		goto out;
	}
	if (body == NULL)
		req = xasprintf("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
		    "postern-doctor\r\nAccept: */*\r\n\r\n", target, host);
	else
		req = xasprintf("POST %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
		    "postern-doctor\r\nContent-Type: text/xml\r\n"
		    "Content-Length: %zu\r\n\r\n%s", target, host,
		    strlen(body), body);
	k = net_tls_sock_write(t, req, strlen(req));
	free(req);
	if (k < 0) {
		snprintf(err, errlen, "%s:443 closed the connection", host);
		goto out;
	}
	resp = xmalloc(cap + 1);
	while (n < cap && (k = net_tls_sock_read(t, resp + n, cap - n)) > 0)
		n += (size_t)k;
	resp[n] = '\0';
	if (n == cap) {
		snprintf(err, errlen, "the answer is longer than %d bytes",
		    CLI_AUTOCONFIG_MAX);
		goto fail;
	}
	if (sscanf(resp, "HTTP/1.%*1[01] %d", &status) != 1 ||
	    (hdr_end = strstr(resp, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "%s:443 does not answer HTTP", host);
		goto fail;
	}
	if (status != 200) {
		snprintf(err, errlen, "HTTP status %d", status);
		goto fail;
	}
	hdr_end += 4;
	n -= (size_t)(hdr_end - resp);
	memmove(resp, hdr_end, n + 1);
	*len_out = n;
	net_tls_sock_free(&t);
	close(fd);
	return resp;
fail:
	free(resp);
	resp = NULL;
out:
	net_tls_sock_free(&t);
	close(fd);
	return NULL;
}

/* s with every byte but RFC 3986 unreserved ones percent-encoded. */
static char *
url_encode(const char *s)
{
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

	for (; *s != '\0'; s++) {
		if (isalnum((unsigned char)*s) || strchr("-._~", *s) != NULL)
			*o++ = *s;
		else
			o += sprintf(o, "%%%02X", (unsigned char)*s);
	}
	*o = '\0';
	return out;
}

/* s escaped for XML text. */
static char *
xml_escape(const char *s)
{
	char *out = xmalloc(strlen(s) * 6 + 1), *o = out;

	for (; *s != '\0'; s++) {
		const char *r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" :
		    *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;

		if (r != NULL) {
			strcpy(o, r);
			o += strlen(r);
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static const char *
tls_word(enum config_tls tls)
{
	return tls == CONFIG_TLS_IMPLICIT ? "SSL" : tls == CONFIG_TLS_STARTTLS ?
	    "STARTTLS" : "no TLS";
}

/* Asks the places clients ask for their settings, in their order:
 * Thunderbird's autoconfig (autoconfig.DOMAIN, then DOMAIN's
 * /.well-known), then Outlook's Autodiscover (DOMAIN, then
 * autodiscover.DOMAIN). The first that answers with servers is used: its
 * servers are put in out (returns how many) and *source_out names it
 * (a new string). 0 when none answers. */
static size_t
client_autoconfig(struct queue_lookup *lk, const char *address,
    const char *domain, const char *ca_file, struct cli_report *rep,
    struct cli_mail_server *out, char **source_out)
{
	char *enc = url_encode(address), *xaddr = xml_escape(address);
	char *tb_target = xasprintf("/mail/config-v1.1.xml?emailaddress=%s",
	    enc);
	char *wk_target = xasprintf("/.well-known/autoconfig/mail/"
	    "config-v1.1.xml?emailaddress=%s", enc);
	char *ad_body = xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>"
	    "%s</EMailAddress><AcceptableResponseSchema>http://schemas."
	    "microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	    "</AcceptableResponseSchema></Request></Autodiscover>", xaddr);
	char *ac_host = xasprintf("autoconfig.%s", domain);
	char *ad_host = xasprintf("autodiscover.%s", domain);
	const struct {
		const char *what, *host, *target, *body;
		bool is_outlook;
	} tries[] = {
		{ "Thunderbird autoconfig", ac_host, tb_target, NULL, false },
		{ "Thunderbird autoconfig", domain, wk_target, NULL, false },
		{ "Outlook Autodiscover", domain,
		    "/autodiscover/autodiscover.xml", ad_body, true },
		{ "Outlook Autodiscover", ad_host,
		    "/autodiscover/autodiscover.xml", ad_body, true },
	};
	size_t n = 0;

	*source_out = NULL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]) && n == 0;
	    i++) {
		char url[600], err[512], text[1400];
		size_t len = 0, o = 0;
		char *doc;

		/* The query names the address: left out of the report. */
		snprintf(url, sizeof(url), "https://%s%.*s", tries[i].host,
		    (int)strcspn(tries[i].target, "?"), tries[i].target);
		doc = https_fetch(lk, tries[i].host, tries[i].target,
		    tries[i].body, ca_file, &len, err, sizeof(err));
		if (doc == NULL) {
			snprintf(text, sizeof(text), "not used: %s.", err);
			cli_report_line(rep, CLI_MARK_WARN, tries[i].what, url,
			    NULL, NULL, text);
			continue;
		}
		n = cli_autoconfig_parse(doc, len, tries[i].is_outlook, domain,
		    out, DISCOVERED_MAX);
		free(doc);
		if (n == 0) {
			cli_report_line(rep, CLI_MARK_FAIL, tries[i].what, url,
			    NULL, NULL, "answers, but names no server a client "
			    "can use (IMAP, POP3 or SMTP with host, port and "
			    "TLS kind): clients that ask here fail.");
			continue;
		}
		o = (size_t)snprintf(text, sizeof(text), "used: it names");
		for (size_t k = 0; k < n && o < sizeof(text) - 80; k++)
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "%s %s %s:%u %s", k == 0 ? "" : ",",
			    out[k].proto == CONFIG_PROTO_SUBMISSION ? "smtp" :
			    config_proto_name((enum config_proto)out[k].proto),
			    out[k].host, (unsigned)out[k].port,
			    tls_word((enum config_tls)out[k].tls));
		snprintf(text + o, sizeof(text) - o, ".");
		cli_report_line(rep, CLI_MARK_OK, tries[i].what, url, NULL,
		    NULL, text);
		*source_out = xasprintf("%s (%s)", tries[i].what, url);
	}
	free(enc);
	free(xaddr);
	free(tb_target);
	free(wk_target);
	free(ad_body);
	free(ac_host);
	free(ad_host);
	return n;
}

/* Where a client would look for the server without autoconfiguration:
 * SRV records (RFC 6186), then the names guessed by clients. Returns the
 * host, or NULL; *source_out says which (a new string). */
static char *
client_discover(struct queue_lookup *lk, const char *domain,
    struct cli_report *rep, char **source_out)
{
	static const char *const srv[] = { "_imaps._tcp", "_submissions._tcp",
	    "_imap._tcp", "_submission._tcp" };
	static const char *const guess[] = { "mail", "imap", "smtp" };
	char *host = NULL, name[300], text[512];

	*source_out = NULL;
	for (size_t i = 0; i < sizeof(srv) / sizeof(srv[0]); i++) {
		char **rrs = NULL;
		size_t n = 0;
		unsigned pr, w, po;
		char target[256];

		snprintf(name, sizeof(name), "%s.%s.", srv[i], domain);
		if (queue_lookup_query(lk, name, "SRV", &rrs, &n) ==
		    QUEUE_LOOKUP_OK && sscanf(rrs[0], "%u %u %u %255s", &pr, &w,
		    &po, target) == 4 && strcmp(target, ".") != 0) {
			size_t tl = strlen(target);

			if (tl > 1 && target[tl - 1] == '.')
				target[tl - 1] = '\0';
			if (host == NULL) {
				host = xstrdup(target);
				*source_out = xasprintf("SRV %s", name);
			}
			snprintf(text, sizeof(text), "%s port %u.", target, po);
			cli_report_line(rep, CLI_MARK_OK, "SRV", name, NULL,
			    NULL, text);
		} else {
			cli_report_line(rep, CLI_MARK_WARN, "SRV", name, NULL,
			    NULL, "not published: clients guess instead.");
		}
		queue_lookup_rrs_free(&rrs, n);
	}
	for (size_t i = 0; host == NULL &&
	    i < sizeof(guess) / sizeof(guess[0]); i++) {
		char **rrs = NULL;
		size_t n = 0;

		snprintf(name, sizeof(name), "%s.%s", guess[i], domain);
		if (queue_lookup_query(lk, name, "A", &rrs, &n) ==
		    QUEUE_LOOKUP_OK) {
			snprintf(text, sizeof(text), "resolves (%s).", rrs[0]);
			cli_report_line(rep, CLI_MARK_OK, "guess", name, NULL,
			    NULL, text);
			host = xstrdup(name);
			*source_out = xasprintf("the guessed name %s", name);
		} else {
			cli_report_line(rep, CLI_MARK_WARN, "guess", name, NULL,
			    NULL, "does not resolve.");
		}
		queue_lookup_rrs_free(&rrs, n);
	}
	return host;
}

static int
doctor_client(int argc, char **argv, bool is_json)
{
	struct cli_report rep = { 0 };
	const char *address = NULL, *server = NULL, *ca_file = NULL,
	    *resolver = NULL, *at;
	unsigned long resolver_port = 53;
	bool is_scan = false;
	char *pw, *host = NULL, *source = NULL, *addr, err[256];
	struct queue_lookup *lk = NULL;
	struct cli_mail_server found[DISCOVERED_MAX];
	size_t nfound = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
			server = argv[++i];
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			ca_file = argv[++i];
		else if (strcmp(argv[i], "--resolver") == 0 && i + 1 < argc)
			resolver = argv[++i];
		else if (strcmp(argv[i], "--resolver-port") == 0 &&
		    i + 1 < argc) {
			char *end;

			resolver_port = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || resolver_port == 0 ||
			    resolver_port > 65535)
				address = NULL, i = argc;
		} else if (strcmp(argv[i], "--port-scan") == 0)
			is_scan = true;
		else if (strcmp(argv[i], "--json") == 0)
			;
		else if (address == NULL && argv[i][0] != '-')
			address = argv[i];
		else
			address = NULL, i = argc;
	}
	if (address == NULL || (at = strrchr(address, '@')) == NULL ||
	    at[1] == '\0' || strlen(address) > 254 ||
	    strlen(at + 1) > CLI_HOST_MAX) {
		fprintf(stderr, "usage: %s\n", client_usage);
		return CLI_EXIT_USAGE;
	}
	pw = cli_password_read("Password: ");
	if (pw == NULL)
		return CLI_EXIT_FAIL;
	if (is_json)
		rep.items = json_array();
	if (server != NULL) {
		host = xstrdup(server);
	} else if ((lk = queue_lookup_new(resolver, (uint16_t)resolver_port,
	    err, sizeof(err))) == NULL) {
		cli_report_line(&rep, CLI_MARK_FAIL, "discovery", at + 1, NULL,
		    NULL, err);
	} else {
		nfound = client_autoconfig(lk, address, at + 1, ca_file, &rep,
		    found, &source);
		/* The incoming server's host is the server, as clients
		 * show it; submission on another host is probed there. */
		for (size_t i = 0; i < nfound && host == NULL; i++) {
			if (found[i].proto != CONFIG_PROTO_SUBMISSION)
				host = xstrdup(found[i].host);
		}
		if (nfound > 0 && host == NULL)
			host = xstrdup(found[0].host);
		if (host == NULL)
			host = client_discover(lk, at + 1, &rep, &source);
		if (host == NULL)
			cli_report_line(&rep, CLI_MARK_FAIL, "discovery", at + 1,
			    NULL, NULL, "no autoconfiguration answers, no SRV "
			    "record and no guessed name resolves: clients "
			    "cannot find the server; give --server HOST.");
		else {
			char text[600];

			snprintf(text, sizeof(text), "clients find %s through "
			    "%s.", host, source);
			cli_report_line(&rep, CLI_MARK_OK, "discovery", at + 1,
			    NULL, NULL, text);
		}
	}
	addr = host != NULL ? host_addr(lk, host) : NULL;
	for (size_t i = 0; host != NULL &&
	    i < sizeof(client_ports) / sizeof(client_ports[0]); i++) {
		struct client_target tg = {
			.host = host, .addr = addr,
			.port = client_ports[i].port,
			.proto = client_ports[i].proto,
			.tls = client_ports[i].tls,
		};

		/* What the autoconfiguration says of this port is what
		 * clients will expect of it. */
		for (size_t k = 0; k < nfound; k++) {
			if (strcasecmp(found[k].host, host) == 0 &&
			    found[k].port == tg.port &&
			    found[k].proto == (int)tg.proto) {
				tg.proto = (enum config_proto)found[k].proto;
				tg.tls = (enum config_tls)found[k].tls;
				tg.source = source;
			}
		}
		if (client_ports[i].is_scan_only && !is_scan &&
		    tg.source == NULL)
			continue;
		client_port(&tg, address, pw, ca_file, &rep);
	}
	/* Servers the answer names elsewhere: another host or port. */
	for (size_t k = 0; k < nfound; k++) {
		bool is_done = false;
		char *a;

		for (size_t i = 0; i < sizeof(client_ports) /
		    sizeof(client_ports[0]); i++) {
			if (strcasecmp(found[k].host, host) == 0 &&
			    found[k].port == client_ports[i].port)
				is_done = true;
		}
		for (size_t j = 0; j < k; j++) {
			if (strcasecmp(found[j].host, found[k].host) == 0 &&
			    found[j].port == found[k].port)
				is_done = true;
		}
		if (is_done)
			continue;
		a = host_addr(lk, found[k].host);
		{
			struct client_target tg = {
				.host = found[k].host, .addr = a,
				.port = found[k].port,
				.proto = (enum config_proto)found[k].proto,
				.tls = (enum config_tls)found[k].tls,
				.source = source,
			};

			client_port(&tg, address, pw, ca_file, &rep);
		}
		free(a);
	}
	queue_lookup_free(&lk);
	secret_wipe(pw, strlen(pw));
	free(pw);
	free(addr);
	free(host);
	free(source);
	return report_end(&rep);
}

/* ---- the command ------------------------------------------------------ */

/* The configuration path among argv, as cli_admin_open() will find it. */
static const char *
config_path_of(int argc, char **argv)
{
	const char *env = getenv("POSTERN_CONFIG");
	const char *path = env != NULL && *env != '\0' ? env :
	    CLI_DEFAULT_CONFIG;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0)
			path = argv[i + 1];
	}
	return path;
}

static int
doctor_server(int argc, char **argv, char **ips, size_t nips, bool is_json)
{
	struct cli_report rep = { 0 };
	struct cli_admin ad;
	const char *path = config_path_of(argc, argv);
	char err[1024], **domains = NULL, *first = NULL;
	struct config *cfg;
	enum store_err serr;
	int rc, problems;

	if (is_json)
		rep.items = json_array();
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		cli_report_line(&rep, CLI_MARK_FAIL, "configuration", NULL,
		    NULL, NULL, err);
		goto done;
	}
	if (net_certs_check(cfg, err, sizeof(err)) < 0) {
		cli_report_line(&rep, CLI_MARK_FAIL, "configuration", NULL,
		    NULL, NULL, err);
		config_free(&cfg);
		goto done;
	}
	config_free(&cfg);
	rc = cli_admin_open(&ad, argc, argv, usage);
	if (rc != 0) {
		if (rep.items != NULL)
			json_decref(rep.items);
		return rc;
	}
	snprintf(err, sizeof(err), "%s is valid (%zu listeners, %zu "
	    "certificates).", path, ad.cfg->nlisteners, ad.cfg->ncerts);
	cli_report_line(&rep, CLI_MARK_OK, "configuration", NULL, NULL, NULL,
	    err);
	clock_check(ad.cfg, &rep);
	for (size_t i = 0; i < ad.cfg->nlisteners; i++)
		listener_check(ad.cfg, &ad.cfg->listeners[i], &rep);
	if (store_domain_list(ad.store, &domains, &serr) < 0)
		domains = NULL;
	{
		size_t nd = 0;

		while (domains != NULL && domains[nd] != NULL)
			nd++;
		certs_check(&ad, domains, nd, &rep);
		if (nd == 0)
			cli_report_line(&rep, CLI_MARK_WARN, "domains", NULL,
			    NULL, NULL, "no domain yet: postern domain add "
			    "DOMAIN.");
		for (size_t i = 0; i < nd; i++)
			cli_dns_check_domain(&ad, domains[i], ips, nips, &rep);
	}
	queue_check(&ad, &rep);
	problems = store_check(ad.store, false, store_line, &first);
	if (problems == 0) {
		cli_report_line(&rep, CLI_MARK_OK, "store", NULL, NULL, NULL,
		    "every message has its body; counters match.");
	} else {
		snprintf(err, sizeof(err), "%d problem%s (first: %s): run "
		    "postern store check, then postern store check --repair.",
		    problems, problems == 1 ? "" : "s", first != NULL ? first :
		    "cannot read the store");
		cli_report_line(&rep, CLI_MARK_FAIL, "store", NULL, NULL, NULL,
		    err);
	}
	free(first);
	disk_check(&ad, &rep);
	store_strings_free(&domains);
	cli_admin_close(&ad);
done:
	return report_end(&rep);
}

int
cli_doctor(int argc, char **argv)
{
	char *ips[16], **args;
	size_t nips = 0;
	bool is_json = false;
	int n = 0, rc;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ip") == 0) {
			unsigned char a[16];

			if (i + 1 >= argc || nips >= 16 || (inet_pton(AF_INET,
			    argv[i + 1], a) != 1 && inet_pton(AF_INET6,
			    argv[i + 1], a) != 1)) {
				free(args);
				fprintf(stderr, "postern: --ip needs a numeric "
				    "IPv4 or IPv6 address (at most 16)\n");
				return CLI_EXIT_USAGE;
			}
			ips[nips++] = argv[++i];
			continue;
		}
		is_json |= strcmp(argv[i], "--json") == 0;
		args[n++] = argv[i];
	}
	if (n >= 2 && strcmp(args[1], "client") == 0)
		rc = doctor_client(n - 1, args + 1, is_json);
	else
		rc = doctor_server(n, args, ips, nips, is_json);
	free(args);
	return rc;
}
