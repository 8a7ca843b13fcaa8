/*
 * imap_load: the IMAP load generator of the bench (issue 9, loads 2, 3
 * and 5). One binary, three modes:
 *
 *   imap_load login -p PORT [--tls] -u FORMAT -n USERS -w PASSWORD
 *                   -c CLIENTS (-t TOTAL | -d SECONDS)
 *       TOTAL logins (or as many as fit in SECONDS) by CLIENTS threads: a new connection (TLS handshake
 *       with --tls, never resumed), AUTHENTICATE PLAIN with an initial
 *       response (RFC 9051 §6.2.2, RFC 4959), LOGOUT. Users in turn.
 *
 *   imap_load mix -p PORT -u FORMAT -n USERS -w PASSWORD -c CLIENTS
 *                 -d SECONDS [--rate R [--even]]
 *       CLIENTS threads, client i on user i % USERS, each with a second
 *       connection of the same user in IDLE (RFC 2177) the whole time.
 *       Each round: SELECT INBOX; FETCH FLAGS ENVELOPE of the last 50;
 *       FETCH BODY.PEEK[] of a random message; STORE +FLAGS or -FLAGS
 *       \Seen on it; SEARCH UNSEEN; APPEND a 4 KiB message; NOOP; STORE
 *       \Deleted on it and EXPUNGE, so the mailbox keeps its size. The
 *       nine commands count as operations, each timed. The IDLE connection
 *       times, without holding up the rounds, how long after an APPEND
 *       starts it hears of it (the "idle wake-up"). The clock (and -d)
 *       starts once every client is logged in and idling: the logins
 *       are not counted (setup_seconds says how long they took).
 *       Closed loop by default: each client sends its next command as
 *       soon as the last one is answered, so latency includes waiting
 *       behind the other clients' commands. With --rate R, open loop: R
 *       commands per second offered in all, each client's commands due
 *       at Poisson arrivals of rate R / CLIENTS (evenly spaced with
 *       --even); a client that falls behind sends at once, and latency
 *       counts from when the command was due, not from when it went out
 *       (no coordinated omission). Only commands sent before the end
 *       count.
 *
 *   imap_load idle -p PORT -u FORMAT -w PASSWORD -c CONNECTIONS
 *                  [-s SOURCES]
 *       CONNECTIONS connections of user FORMAT(0) (from SOURCES loopback
 *       addresses 127.0.1.1..., in turn: Dovecot allows 10 per user and
 *       address by default), each logged in, INBOX selected, in IDLE.
 *       Prints "READY" and waits for a line on stdin, then APPENDs one
 *       message on another connection and measures the time until every
 *       idle connection has seen the new EXISTS.
 *
 * Each mode prints one JSON line at the end. Every read is bounded by
 * LOAD_LINE_MAX; literals in responses ({N}) are skipped, never stored.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "load_net.h"

enum op {
	OP_SELECT, OP_FETCH_ENV, OP_FETCH_BODY, OP_STORE, OP_SEARCH,
	OP_APPEND, OP_IDLE_WAKE, OP_NOOP, OP_STORE_DELETED, OP_EXPUNGE,
	OP_LOGIN, OP_COUNT
};

static const char *op_names[OP_COUNT] = {
	"select", "fetch_envelope", "fetch_body", "store", "search",
	"append", "idle_wakeup", "noop", "store_deleted", "expunge", "login",
};

struct opts {
	const char *host;
	int port;
	bool tls;
	const char *user_fmt;
	int users;
	const char *password;
	int clients;
	long total;
	double duration;
	int sources;
	double rate;		/* open loop: commands/s offered; 0: closed */
	bool is_even;		/* open loop: evenly spaced, not Poisson */
};

static struct opts opt = { .host = "127.0.0.1", .users = 1, .clients = 1,
	.duration = 30, .sources = 1 };
static SSL_CTX *ssl_ctx;
static atomic_long ops_started, ops_done, errors;
static atomic_bool stop;
/* mix: the clients and main meet here once every client is set up. */
static pthread_barrier_t mix_ready;
static pthread_mutex_t lat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct load_lat lat[OP_COUNT];

/* What one response (up to its tagged line) told us. */
struct resp {
	long exists;		/* last "* N EXISTS", -1 if none */
	long search_hits;	/* numbers in "* SEARCH", -1 if none */
	long expunges;
	bool is_ok;
};

/* Parses "{N}\r\n" at the end of a line; returns N or -1. */
static long
literal_len(const char *line, size_t len)
{
	size_t i;
	long n = 0;

	if (len < 5 || line[len - 1] != '\n' || line[len - 2] != '\r' ||
	    line[len - 3] != '}')
		return -1;
	i = len - 4;
	while (i > 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (line[i] != '{' || i == len - 4)
		return -1;
	for (i++; line[i] != '}'; i++) {
		n = n * 10 + (line[i] - '0');
		if (n > (1L << 40))
			return -1;
	}
	return n;
}

static void
untagged(struct resp *r, const char *line, size_t len)
{
	char *end;
	long n;

	if (load_starts(line, len, "* SEARCH")) {
		r->search_hits = 0;
		for (size_t i = 8; i < len; i++)
			if (line[i] == ' ')
				r->search_hits++;
		return;
	}
	if (len < 3 || line[2] < '0' || line[2] > '9')
		return;
	n = strtol(line + 2, &end, 10);
	if ((size_t)(end - line) + 7 <= len && memcmp(end, " EXISTS", 7) == 0)
		r->exists = n;
	else if ((size_t)(end - line) + 8 <= len &&
	    memcmp(end, " EXPUNGE", 8) == 0)
		r->expunges++;
}

/* Reads responses up to the tagged one of tag. Returns 0 if it is OK,
 * -1 otherwise (r->is_ok false). */
static int
wait_tagged(struct load_conn *c, const char *tag, struct resp *r)
{
	size_t tlen = strlen(tag);

	r->exists = -1;
	r->search_hits = -1;
	r->expunges = 0;
	r->is_ok = false;
	for (;;) {
		char *line;
		ssize_t n = load_conn_line(c, &line);
		long lit;

		if (n < 0)
			return -1;
		if ((size_t)n > tlen && memcmp(line, tag, tlen) == 0 &&
		    line[tlen] == ' ') {
			r->is_ok = load_starts(line + tlen + 1,
			    (size_t)n - tlen - 1, "OK");
			return r->is_ok ? 0 : -1;
		}
		if (line[0] == '*')
			untagged(r, line, (size_t)n);
		/* A literal and the rest of its line, possibly with more
		 * literals (RFC 9051 §4.3). */
		while ((lit = literal_len(line, (size_t)n)) >= 0) {
			if (load_conn_skip(c, (uint64_t)lit) < 0)
				return -1;
			n = load_conn_line(c, &line);
			if (n < 0)
				return -1;
		}
	}
}

/* Reads lines until one starts with prefix (untagged data is noted in
 * r). Returns 0 or -1. */
static int
wait_prefix(struct load_conn *c, const char *prefix, struct resp *r)
{
	for (;;) {
		char *line;
		ssize_t n = load_conn_line(c, &line);

		if (n < 0)
			return -1;
		if (load_starts(line, (size_t)n, prefix))
			return 0;
		if (line[0] == '*' && r != NULL)
			untagged(r, line, (size_t)n);
	}
}

static int
imap_open(struct load_conn *c, const char *source)
{
	if (load_conn_open(c, opt.host, opt.port, source,
	    opt.tls ? ssl_ctx : NULL) < 0)
		return -1;
	return wait_prefix(c, "* OK", NULL);
}

static int
imap_auth(struct load_conn *c, int user_idx)
{
	char user[256], raw[600], b64[820];
	struct resp r;
	size_t ulen, plen;

	snprintf(user, sizeof(user), opt.user_fmt, user_idx);
	ulen = strlen(user);
	plen = strlen(opt.password);
	if (ulen + plen + 2 > sizeof(raw))
		return -1;
	raw[0] = '\0';
	memcpy(raw + 1, user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, opt.password, plen);
	load_base64((unsigned char *)raw, ulen + plen + 2, b64);
	if (load_conn_printf(c, "a AUTHENTICATE PLAIN %s\r\n", b64) < 0)
		return -1;
	return wait_tagged(c, "a", &r);
}

static void
lat_merge(struct load_lat *mine)
{
	pthread_mutex_lock(&lat_lock);
	for (int i = 0; i < OP_COUNT; i++) {
		for (size_t j = 0; j < mine[i].n; j++)
			load_lat_add(&lat[i], mine[i].v[j]);
		free(mine[i].v);
	}
	pthread_mutex_unlock(&lat_lock);
}

/* ---- login ------------------------------------------------------------- */

static void *
login_client(void *arg)
{
	struct load_lat mine[OP_COUNT] = { 0 };
	struct load_conn c = { .fd = -1 };

	(void)arg;
	for (;;) {
		long k = atomic_fetch_add(&ops_started, 1);
		struct resp r;
		double t0;

		if (k >= opt.total || atomic_load(&stop))
			break;
		t0 = load_now();
		if (imap_open(&c, NULL) < 0 ||
		    imap_auth(&c, (int)(k % opt.users)) < 0 ||
		    load_conn_printf(&c, "b LOGOUT\r\n") < 0 ||
		    wait_tagged(&c, "b", &r) < 0) {
			atomic_fetch_add(&errors, 1);
			load_conn_close(&c);
			continue;
		}
		load_conn_close(&c);
		load_lat_add(&mine[OP_LOGIN], load_now() - t0);
		atomic_fetch_add(&ops_done, 1);
	}
	free(c.buf);
	lat_merge(mine);
	return NULL;
}

/* ---- mix --------------------------------------------------------------- */

#define APPEND_SIZE 4096

static char append_msg[APPEND_SIZE + 1];

static void
append_msg_init(void)
{
	size_t n = (size_t)snprintf(append_msg, sizeof(append_msg),
	    "From: bench <bench@client.example>\r\n"
	    "To: user@example.test\r\n"
	    "Subject: appended by imap_load\r\n"
	    "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\n"
	    "Message-ID: <imap-load@client.example>\r\n\r\n");

	while (n + 2 <= APPEND_SIZE) {
		size_t line = APPEND_SIZE - n - 2 < 76 ?
		    APPEND_SIZE - n - 2 : 76;

		memset(append_msg + n, 'x', line);
		n += line;
		memcpy(append_msg + n, "\r\n", 2);
		n += 2;
	}
	append_msg[n] = '\0';
}

struct mix_client {
	int idx;
	unsigned seed;
	unsigned short xsubi[3];	/* erand48 state of the arrivals */
	double gap;		/* open loop: mean seconds between commands */
	double next;		/* open loop: when the next command is due */
	struct load_conn idle;
	/* Start of the last APPEND not yet heard of on the IDLE connection
	 * (load_now() as bits), or 0. */
	_Atomic uint64_t append_t0;
	struct load_lat wake;	/* filled by the idler thread only */
};

static int
idle_enter(struct load_conn *c)
{
	if (load_conn_printf(c, "i IDLE\r\n") < 0)
		return -1;
	return wait_prefix(c, "+", NULL);
}

static uint64_t
dbits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double
bitsd(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

/* The second connection of a mix client: stays in IDLE for the whole
 * run; each "* N EXISTS" it hears is the wake-up for the last APPEND
 * (the round goes on without waiting for it). Ends at the tagged reply
 * to the DONE the client thread sends. */
static void *
mix_idler(void *arg)
{
	struct mix_client *mc = arg;

	for (;;) {
		char *line, *end;
		ssize_t n = load_conn_line(&mc->idle, &line);
		uint64_t t0;

		if (n < 0)
			return NULL;
		if (load_starts(line, (size_t)n, "i "))
			return NULL;
		if (n < 3 || line[0] != '*' || line[2] < '0' || line[2] > '9')
			continue;
		strtol(line + 2, &end, 10);
		if (!load_starts(end, (size_t)(n - (end - line)), " EXISTS"))
			continue;
		t0 = atomic_exchange(&mc->append_t0, 0);
		if (t0 != 0)
			load_lat_add(&mc->wake, load_now() - bitsd(t0));
	}
}

/* -ln(u) for u in (0, 1], without libm: u = m * 2^e with m in [1, 2),
 * ln(m) = 2 atanh(z) with z = (m - 1) / (m + 1) <= 1/3, whose series
 * gains a factor 9 a term (14 terms: below 1e-13). */
static double
neg_ln(double u)
{
	uint64_t bits;
	double m, z, z2, term, sum = 0;
	int e;

	memcpy(&bits, &u, sizeof(bits));
	e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ~(0x7ffULL << 52)) | (1023ULL << 52);
	memcpy(&m, &bits, sizeof(m));
	z = (m - 1) / (m + 1);
	z2 = z * z;
	term = z;
	for (int k = 1; k < 30; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return -(e * 0.69314718055994530942 + 2 * sum);
}

static void
sleep_until(double t)
{
	struct timespec ts = { (time_t)t, (long)((t - (time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/* When the next command of mc is due. Closed loop: now. Open loop: its
 * arrival, slept until if still ahead; a client that is behind sends at
 * once, and the command's latency counts from when it was due. Once the
 * run is over the rest of the round goes unpaced (and is not counted). */
static double
pace(struct mix_client *mc)
{
	double now = load_now(), due;

	if (opt.rate <= 0 || atomic_load(&stop))
		return now;
	due = mc->next;
	/* 1 - erand48() is in (0, 1]. */
	mc->next += opt.is_even ? mc->gap :
	    mc->gap * neg_ln(1.0 - erand48(mc->xsubi));
	if (due > now)
		sleep_until(due);
	return due;
}

/* Counts one command that went out at (or was due at) t0 and is now
 * answered, unless the run was over when it went out. */
static void
count_op(struct load_lat *l, enum op op, double t0, bool is_late)
{
	if (is_late)
		return;
	load_lat_add(&l[op], load_now() - t0);
	atomic_fetch_add(&ops_done, 1);
}

/* Sends a command when it is due and waits for its tagged reply; counts
 * it under op. */
static int
timed(struct mix_client *mc, struct load_conn *c, enum op op,
    struct load_lat *l, struct resp *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	double t0;
	bool is_late;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	t0 = pace(mc);
	is_late = atomic_load(&stop);
	if (load_conn_write(c, line, (size_t)n) < 0 ||
	    wait_tagged(c, "t", r) < 0)
		return -1;
	count_op(l, op, t0, is_late);
	return 0;
}

static int
mix_round(struct mix_client *mc, struct load_conn *c, struct load_lat *l)
{
	struct resp r;
	long exists, pick, from;
	double t0;
	char line[128];
	uint64_t none = 0;
	bool is_late;
	int n;

	if (timed(mc, c, OP_SELECT, l, &r, "t SELECT INBOX\r\n") < 0 ||
	    r.exists < 1)
		return -1;
	exists = r.exists;
	from = exists > 50 ? exists - 49 : 1;
	if (timed(mc, c, OP_FETCH_ENV, l, &r,
	    "t FETCH %ld:%ld (FLAGS ENVELOPE)\r\n", from, exists) < 0)
		return -1;
	pick = 1 + (long)(rand_r(&mc->seed) % (unsigned)exists);
	if (timed(mc, c, OP_FETCH_BODY, l, &r, "t FETCH %ld BODY.PEEK[]\r\n",
	    pick) < 0)
		return -1;
	if (timed(mc, c, OP_STORE, l, &r, "t STORE %ld %cFLAGS (\\Seen)\r\n",
	    pick, rand_r(&mc->seed) % 2 ? '+' : '-') < 0)
		return -1;
	if (timed(mc, c, OP_SEARCH, l, &r, "t SEARCH UNSEEN\r\n") < 0 ||
	    r.search_hits < 0)
		return -1;
	/* APPEND with a synchronizing literal (RFC 9051 §7.5); the IDLE
	 * connection of the same account times its wake-up. */
	n = snprintf(line, sizeof(line), "t APPEND INBOX {%zu}\r\n",
	    strlen(append_msg));
	t0 = pace(mc);
	is_late = atomic_load(&stop);
	/* The wake-up counts from when the APPEND went out. */
	atomic_compare_exchange_strong(&mc->append_t0, &none,
	    dbits(load_now()));
	if (load_conn_write(c, line, (size_t)n) < 0 ||
	    wait_prefix(c, "+", NULL) < 0 ||
	    load_conn_write(c, append_msg, strlen(append_msg)) < 0 ||
	    load_conn_write(c, "\r\n", 2) < 0 || wait_tagged(c, "t", &r) < 0)
		return -1;
	count_op(l, OP_APPEND, t0, is_late);
	/* The new message is the last one: see it, then remove it, so the
	 * mailbox keeps its size. */
	if (timed(mc, c, OP_NOOP, l, &r, "t NOOP\r\n") < 0)
		return -1;
	if (timed(mc, c, OP_STORE_DELETED, l, &r,
	    "t STORE %ld +FLAGS.SILENT (\\Deleted)\r\n", exists + 1) < 0)
		return -1;
	if (timed(mc, c, OP_EXPUNGE, l, &r, "t EXPUNGE\r\n") < 0 ||
	    r.expunges != 1)
		return -1;
	return 0;
}

static void *
mix_client(void *arg)
{
	struct mix_client *mc = arg;
	struct load_lat mine[OP_COUNT] = { 0 };
	struct load_conn c = { .fd = -1 };
	struct resp r;
	pthread_t idler;
	bool has_idler = false, is_set_up;
	int user = mc->idx % opt.users;

	mc->idle.fd = -1;
	is_set_up = imap_open(&c, NULL) == 0 && imap_auth(&c, user) == 0 &&
	    imap_open(&mc->idle, NULL) == 0 &&
	    imap_auth(&mc->idle, user) == 0 &&
	    load_conn_printf(&mc->idle, "s SELECT INBOX\r\n") == 0 &&
	    wait_tagged(&mc->idle, "s", &r) == 0 && idle_enter(&mc->idle) == 0;
	if (is_set_up && pthread_create(&idler, NULL, mix_idler, mc) == 0)
		has_idler = true;
	/* Every client (set up or not) and main meet once. */
	pthread_barrier_wait(&mix_ready);
	if (!has_idler) {
		fprintf(stderr, "imap_load: client %d: setup failed\n",
		    mc->idx);
		atomic_fetch_add(&errors, 1);
		goto out;
	}
	if (opt.rate > 0) {
		/* Clients start out of step, at a random point of their
		 * first gap. */
		mc->gap = opt.clients / opt.rate;
		mc->next = load_now() + mc->gap * erand48(mc->xsubi);
	}
	while (!atomic_load(&stop)) {
		if (mix_round(mc, &c, mine) < 0) {
			fprintf(stderr, "imap_load: client %d: a round "
			    "failed\n", mc->idx);
			atomic_fetch_add(&errors, 1);
			break;
		}
	}
	/* The idler reads the reply to DONE (plain TCP: writing while the
	 * other thread reads is fine). */
	load_conn_printf(&mc->idle, "DONE\r\n");
	if (load_conn_printf(&c, "z LOGOUT\r\n") == 0)
		wait_tagged(&c, "z", &r);
out:
	if (has_idler)
		pthread_join(idler, NULL);
	mine[OP_IDLE_WAKE] = mc->wake;
	load_conn_close(&c);
	load_conn_close(&mc->idle);
	free(c.buf);
	free(mc->idle.buf);
	lat_merge(mine);
	return NULL;
}

/* ---- idle -------------------------------------------------------------- */

struct idle_setup {
	struct load_conn *conns;
	int from, to;
};

static void *
idle_setup_thread(void *arg)
{
	struct idle_setup *is = arg;

	for (int i = is->from; i < is->to; i++) {
		struct load_conn *c = &is->conns[i];
		char source[32];
		struct resp r;
		int s = i % opt.sources;

		snprintf(source, sizeof(source), "127.0.%d.%d", 1 + s / 250,
		    1 + s % 250);
		if (imap_open(c, source) < 0 || imap_auth(c, 0) < 0 ||
		    load_conn_printf(c, "s SELECT INBOX\r\n") < 0 ||
		    wait_tagged(c, "s", &r) < 0 || r.exists < 0 ||
		    idle_enter(c) < 0) {
			if (atomic_fetch_add(&errors, 1) < 10)
				fprintf(stderr, "imap_load: idle connection "
				    "%d failed\n", i);
			load_conn_close(c);
			continue;
		}
		/* Remember the count the connection saw. */
		c->bytes_in = (uint64_t)r.exists;
	}
	return NULL;
}

static int
run_idle(void)
{
	int n = opt.clients, nthreads = 8, open = 0, seen = 0;
	struct load_conn *conns = load_xcalloc((size_t)n, sizeof(*conns));
	struct idle_setup setups[8];
	pthread_t threads[8];
	struct pollfd *pfd = load_xcalloc((size_t)n, sizeof(*pfd));
	bool *done = load_xcalloc((size_t)n, sizeof(*done));
	struct load_conn post = { .fd = -1 };
	long want = -1;
	char line[64];
	struct resp r;
	double t0, t_setup, t_all = 0;
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max :
		    (rlim_t)n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < n; i++) {
		conns[i].fd = -1;
		conns[i].cap = 4096;
	}
	t0 = load_now();
	for (int t = 0; t < nthreads; t++) {
		setups[t].conns = conns;
		setups[t].from = (int)((long)n * t / nthreads);
		setups[t].to = (int)((long)n * (t + 1) / nthreads);
		pthread_create(&threads[t], NULL, idle_setup_thread,
		    &setups[t]);
	}
	for (int t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	t_setup = load_now() - t0;
	for (int i = 0; i < n; i++)
		if (conns[i].fd >= 0) {
			open++;
			if (want < 0 || (long)conns[i].bytes_in + 1 > want)
				want = (long)conns[i].bytes_in + 1;
		}
	printf("READY %d\n", open);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 1;
	if (imap_open(&post, NULL) < 0 || imap_auth(&post, 0) < 0)
		load_die("imap_load: the posting connection failed");
	{
		char cmd[128];
		int len = snprintf(cmd, sizeof(cmd), "p APPEND INBOX {%zu}\r\n",
		    strlen(append_msg));

		t0 = load_now();
		if (load_conn_write(&post, cmd, (size_t)len) < 0 ||
		    wait_prefix(&post, "+", NULL) < 0 ||
		    load_conn_write(&post, append_msg,
		    strlen(append_msg)) < 0 ||
		    load_conn_write(&post, "\r\n", 2) < 0 ||
		    wait_tagged(&post, "p", &r) < 0)
			load_die("imap_load: APPEND failed");
	}
	/* Every idle connection must now say "* N EXISTS". Lines are
	 * short: one read per connection and readiness is enough. */
	for (int i = 0; i < n; i++) {
		pfd[i].fd = conns[i].fd;
		pfd[i].events = POLLIN;
		done[i] = conns[i].fd < 0;
	}
	seen = 0;
	while (seen < open) {
		int k = poll(pfd, (nfds_t)n, 60000);

		if (k <= 0)
			break;
		for (int i = 0; i < n; i++) {
			char *l, *end;
			ssize_t len;

			if (done[i] || !(pfd[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			if (load_conn_fill(&conns[i]) <= 0) {
				done[i] = true;
				pfd[i].fd = -1;
				atomic_fetch_add(&errors, 1);
				continue;
			}
			while (conns[i].off < conns[i].len &&
			    memchr(conns[i].buf + conns[i].off, '\n',
			    conns[i].len - conns[i].off) != NULL) {
				len = load_conn_line(&conns[i], &l);
				if (len >= 3 && l[0] == '*' && l[2] >= '0' &&
				    l[2] <= '9' && strtol(l + 2, &end, 10) >=
				    want && load_starts(end, (size_t)(len -
				    (end - l)), " EXISTS")) {
					done[i] = true;
					pfd[i].fd = -1;
					seen++;
					break;
				}
			}
		}
	}
	t_all = load_now() - t0;
	printf("{\"connections\": %d, \"open\": %d, \"woken\": %d, "
	    "\"setup_seconds\": %.3f, \"wake_all_seconds\": %.6f, "
	    "\"errors\": %ld}\n", n, open, seen, t_setup, t_all,
	    atomic_load(&errors));
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		load_conn_close(&conns[i]);
		free(conns[i].buf);
	}
	load_conn_close(&post);
	free(post.buf);
	free(conns);
	free(pfd);
	free(done);
	return seen == open ? 0 : 1;
}

/* ---- main -------------------------------------------------------------- */

static void
usage(void)
{
	load_die("usage: imap_load login|mix|idle -p PORT [--tls] -u FORMAT "
	    "[-n USERS] -w PASSWORD [-c CLIENTS] [-t TOTAL] [-d SECONDS] "
	    "[-s SOURCES] [-h HOST] [--rate R [--even]]");
}

static void
print_lat(void)
{
	bool first = true;

	printf("\"ops\": {");
	for (int i = 0; i < OP_COUNT; i++) {
		if (lat[i].n == 0)
			continue;
		double sum = 0;

		for (size_t j = 0; j < lat[i].n; j++)
			sum += lat[i].v[j];
		printf("%s\"%s\": {\"n\": %zu, \"mean_ms\": %.3f, "
		    "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}",
		    first ? "" : ", ", op_names[i], lat[i].n,
		    sum * 1000.0 / (double)lat[i].n, load_lat_ms(&lat[i], 0.5),
		    load_lat_ms(&lat[i], 0.99), load_lat_ms(&lat[i], 1.0));
		first = false;
	}
	printf("}");
}

int
main(int argc, char **argv)
{
	const char *mode;
	pthread_t *threads;
	struct mix_client *mcs;
	double t0, dt, t_setup = 0;
	bool is_timed, is_mix;

	if (argc < 2)
		usage();
	mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--tls") == 0) {
			opt.tls = true;
			continue;
		}
		if (strcmp(a, "--even") == 0) {
			opt.is_even = true;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "-h") == 0)
			opt.host = v;
		else if (strcmp(a, "-p") == 0)
			opt.port = atoi(v);
		else if (strcmp(a, "-u") == 0)
			opt.user_fmt = v;
		else if (strcmp(a, "-n") == 0)
			opt.users = atoi(v);
		else if (strcmp(a, "-w") == 0)
			opt.password = v;
		else if (strcmp(a, "-c") == 0)
			opt.clients = atoi(v);
		else if (strcmp(a, "-t") == 0)
			opt.total = atol(v);
		else if (strcmp(a, "-d") == 0)
			opt.duration = atof(v);
		else if (strcmp(a, "-s") == 0)
			opt.sources = atoi(v);
		else if (strcmp(a, "--rate") == 0)
			opt.rate = atof(v);
		else
			usage();
	}
	if (opt.port <= 0 || opt.port > 65535 || opt.user_fmt == NULL ||
	    opt.password == NULL || opt.users <= 0 || opt.clients <= 0 ||
	    opt.clients > 100000 || opt.sources <= 0 || opt.sources > 60000 ||
	    strlen(opt.password) > 200 || !(opt.rate >= 0 && opt.rate < 1e6))
		usage();
	if (opt.tls) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
		/* Every login is a full handshake. */
		SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
	}
	append_msg_init();
	if (strcmp(mode, "idle") == 0)
		return run_idle();
	if (strcmp(mode, "login") != 0 && strcmp(mode, "mix") != 0)
		usage();
	if (opt.clients > 1000)
		usage();
	/* login without -t, and mix, run for -d seconds. */
	is_mix = strcmp(mode, "mix") == 0;
	is_timed = is_mix || opt.total == 0;
	if (opt.total == 0)
		opt.total = LONG_MAX;
	if (is_mix && pthread_barrier_init(&mix_ready, NULL,
	    (unsigned)opt.clients + 1) != 0)
		load_die("pthread_barrier_init failed");
	threads = load_xcalloc((size_t)opt.clients, sizeof(*threads));
	mcs = load_xcalloc((size_t)opt.clients, sizeof(*mcs));
	t0 = load_now();
	for (int i = 0; i < opt.clients; i++) {
		mcs[i].idx = i;
		mcs[i].seed = 12345u + (unsigned)i;
		mcs[i].xsubi[0] = 0x330e;
		mcs[i].xsubi[1] = (unsigned short)i;
		mcs[i].xsubi[2] = (unsigned short)(i >> 16) ^ 0x5eed;
		if (pthread_create(&threads[i], NULL, is_mix ? mix_client :
		    login_client, &mcs[i]) != 0)
			load_die("pthread_create failed");
	}
	if (is_mix) {
		/* The mix is timed from when every client is set up. */
		pthread_barrier_wait(&mix_ready);
		t_setup = load_now() - t0;
		t0 = load_now();
	}
	if (is_timed) {
		sleep_until(t0 + opt.duration);
		atomic_store(&stop, true);
	}
	dt = load_now() - t0;
	for (int i = 0; i < opt.clients; i++)
		pthread_join(threads[i], NULL);
	/* The mix counts commands sent before the end; a login counts
	 * when it is done. */
	if (!is_mix)
		dt = load_now() - t0;
	printf("{\"mode\": \"%s\", \"clients\": %d, \"ops_done\": %ld, "
	    "\"seconds\": %.6f, \"errors\": %ld, ", mode, opt.clients,
	    atomic_load(&ops_done), dt, atomic_load(&errors));
	if (is_mix)
		printf("\"setup_seconds\": %.3f, \"rate\": %.1f, "
		    "\"arrivals\": \"%s\", ", t_setup, opt.rate,
		    opt.rate <= 0 ? "closed" : opt.is_even ? "even" :
		    "poisson");
	print_lat();
	printf("}\n");
	free(threads);
	free(mcs);
	return atomic_load(&errors) ? 1 : 0;
}
