/*
 * pop3_load: downloads every message of N mailboxes over POP3 with C
 * clients in parallel (load 4 of issue 9). Each client takes the next
 * mailbox, logs in with USER/PASS (RFC 1939 §7), asks STAT, RETRs every
 * message in turn (no DELE: the mailboxes stay as they were) and QUITs.
 *
 *   pop3_load -p PORT -u FORMAT -n MAILBOXES -w PASSWORD -c CLIENTS
 *
 * FORMAT is a printf format for the user name with one integer
 * ("p%03d@example.test"). Prints one JSON line: mailboxes, messages,
 * bytes (message bytes received, dot-stuffing included, terminators
 * not), seconds (wall time from the first connect to the last QUIT),
 * errors.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "load_net.h"

struct opts {
	const char *host;
	int port;
	const char *user_fmt;
	int mailboxes;
	const char *password;
	int clients;
};

static struct opts opt = { .host = "127.0.0.1", .clients = 20 };
static atomic_int next_mailbox;
static atomic_uint_fast64_t total_bytes, total_messages, total_errors;

/* Reads a status line; true if it is +OK. */
static bool
status_ok(struct load_conn *c, char **line_out, ssize_t *len_out)
{
	char *line;
	ssize_t n = load_conn_line(c, &line);

	if (n < 0)
		return false;
	if (line_out != NULL) {
		*line_out = line;
		*len_out = n;
	}
	return load_starts(line, (size_t)n, "+OK");
}

/* The lines of a multi-line reply up to the "." line (RFC 1939 §3).
 * Returns the bytes before the terminator, or -1. */
static int64_t
multiline(struct load_conn *c)
{
	int64_t bytes = 0;

	for (;;) {
		char *line;
		ssize_t n = load_conn_line(c, &line);

		if (n < 0)
			return -1;
		if (n == 3 && memcmp(line, ".\r\n", 3) == 0)
			return bytes;
		bytes += n;
	}
}

static int
one_mailbox(int idx)
{
	struct load_conn *c = load_xcalloc(1, sizeof(*c));
	char user[256], *line;
	ssize_t len;
	unsigned long count = 0, size = 0;
	int rc = -1;

	snprintf(user, sizeof(user), opt.user_fmt, idx);
	if (load_conn_open(c, opt.host, opt.port, NULL, NULL) < 0)
		goto out;
	if (!status_ok(c, NULL, NULL))
		goto out;
	if (load_conn_printf(c, "USER %s\r\n", user) < 0 ||
	    !status_ok(c, NULL, NULL))
		goto out;
	if (load_conn_printf(c, "PASS %s\r\n", opt.password) < 0 ||
	    !status_ok(c, NULL, NULL))
		goto out;
	if (load_conn_printf(c, "STAT\r\n") < 0 || !status_ok(c, &line, &len))
		goto out;
	if (sscanf(line, "+OK %lu %lu", &count, &size) != 2)
		goto out;
	for (unsigned long i = 1; i <= count; i++) {
		int64_t got;

		if (load_conn_printf(c, "RETR %lu\r\n", i) < 0 ||
		    !status_ok(c, NULL, NULL))
			goto out;
		got = multiline(c);
		if (got < 0)
			goto out;
		atomic_fetch_add(&total_bytes, (uint64_t)got);
		atomic_fetch_add(&total_messages, 1);
	}
	if (load_conn_printf(c, "QUIT\r\n") < 0 || !status_ok(c, NULL, NULL))
		goto out;
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "pop3_load: mailbox %s failed\n", user);
	load_conn_close(c);
	free(c->buf);
	free(c);
	return rc;
}

static void *
client(void *arg)
{
	(void)arg;
	for (;;) {
		int idx = atomic_fetch_add(&next_mailbox, 1);

		if (idx >= opt.mailboxes)
			return NULL;
		if (one_mailbox(idx) < 0)
			atomic_fetch_add(&total_errors, 1);
	}
}

static void
usage(void)
{
	load_die("usage: pop3_load -p PORT -u FORMAT -n MAILBOXES "
	    "-w PASSWORD [-c CLIENTS] [-h HOST]");
}

int
main(int argc, char **argv)
{
	pthread_t *threads;
	double t0, dt;
	int ch;

	while ((ch = getopt(argc, argv, "h:p:u:n:w:c:")) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'u': opt.user_fmt = optarg; break;
		case 'n': opt.mailboxes = atoi(optarg); break;
		case 'w': opt.password = optarg; break;
		case 'c': opt.clients = atoi(optarg); break;
		default: usage();
		}
	}
	if (opt.port <= 0 || opt.port > 65535 || opt.user_fmt == NULL ||
	    opt.password == NULL || opt.mailboxes <= 0 ||
	    opt.clients <= 0 || opt.clients > 1000)
		usage();
	threads = load_xcalloc((size_t)opt.clients, sizeof(*threads));
	t0 = load_now();
	for (int i = 0; i < opt.clients; i++)
		if (pthread_create(&threads[i], NULL, client, NULL) != 0)
			load_die("pthread_create failed");
	for (int i = 0; i < opt.clients; i++)
		pthread_join(threads[i], NULL);
	dt = load_now() - t0;
	printf("{\"mailboxes\": %d, \"messages\": %llu, \"bytes\": %llu, "
	    "\"seconds\": %.6f, \"errors\": %llu}\n", opt.mailboxes,
	    (unsigned long long)total_messages,
	    (unsigned long long)total_bytes, dt,
	    (unsigned long long)total_errors);
	free(threads);
	return total_errors ? 1 : 0;
}
