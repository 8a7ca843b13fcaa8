/*
 * bench_store: load generator for the store (issue 3). Not a test.
 *
 *   bench_store [-d DIR] [-s SECONDS] [-n MESSAGES] [-q]
 *       [-r SIZE:THREADS:BATCH_MAX]
 *
 * Prints one line per run, key=value, with the machine and the settings:
 *   bench=deliver  durable deliveries/s: 4 KiB and 100 KiB messages, 1, 8
 *                  and 64 threads calling store_delivery_commit, group
 *                  commit on (batches of up to 256) and off (batch_max=1);
 *   bench=sync     4 KiB, 64 threads: syncfs against fdatasync per file;
 *   bench=list     store_msg_list of 1,000 messages out of a mailbox of
 *                  MESSAGES (default 100,000);
 *   bench=search   store_search over that mailbox: a rare string, a word
 *                  in 1% of the messages, a common word, a flag.
 * Every delivery is durable when counted (the store answers only then).
 * DIR (default /var/tmp/postern-bench) must be on the file system to
 * measure; each run gets a fresh store in a subdirectory, and all are
 * removed at the end only: ext4 allocates inodes slowly for minutes after
 * many were freed, which would charge one run for the last one's
 * cleanup. -q: fewer runs.
 * -r: only one delivery run, with those settings.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define LAT_MAX 200000

static const char *dir = "/var/tmp/postern-bench";
static double seconds = 4.0;
static long populate = 100000;
static char machine[256];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
describe_machine(void)
{
	char model[128] = "unknown", line[256];
	struct utsname u;
	struct statfs sfs;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			for (char *p = model; *p != '\0'; p++)
				if (*p == ' ')
					*p = '_';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
	uname(&u);
	statfs(dir, &sfs);
	snprintf(machine, sizeof(machine), "cpus=%ld cpu=%s kernel=%s "
	    "fs_magic=0x%lx", sysconf(_SC_NPROCESSORS_ONLN), model, u.release,
	    (unsigned long)sfs.f_type);
}

static struct store *
fresh_store(int64_t *account, int64_t *inbox)
{
	static int runs;
	char path[1024];
	struct store_account a = {
		.address = "bench@example.org",
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	struct store_mailbox mb;
	enum store_err err;
	struct store *st;
	char msg[256];

	snprintf(path, sizeof(path), "%s/run%d", dir, ++runs);
	st = store_open(path, msg, sizeof(msg));
	if (st == NULL) {
		fprintf(stderr, "bench_store: %s\n", msg);
		exit(1);
	}
	if (store_domain_add(st, "example.org", &err) < 0 ||
	    store_account_add(st, &a, &err) < 0 ||
	    store_mailbox_get(st, a.id, "INBOX", &mb, &err) < 0) {
		fprintf(stderr, "bench_store: setup: %s\n",
		    store_err_text(err));
		exit(1);
	}
	*account = a.id;
	*inbox = mb.id;
	store_mailbox_deinit(&mb);
	return st;
}

/* ---- Text ------------------------------------------------------------ */

static const char *const words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as",
	"was", "with", "be", "by", "on", "not", "he", "this", "are", "or",
	"his", "from", "at", "which", "but", "have", "an", "had", "they",
	"you", "were", "their", "one", "all", "we", "can", "her", "has",
	"there", "been", "if", "more", "when", "will", "would", "who", "so",
	"no", "meeting", "report", "project", "budget", "schedule", "review",
	"customer", "invoice", "delivery", "server", "account", "password",
	"holiday", "contract", "team", "update", "question", "answer",
	"please", "thanks", "regards", "tomorrow", "monday", "friday",
	"office", "travel", "document", "attached", "draft", "final",
	"approval", "deadline", "release", "version", "feature", "issue",
	"network", "storage", "backup", "database", "kitchen", "garden",
	"lunch", "coffee", "weekend", "family", "birthday", "concert",
};

/* A message of about len bytes of Zipf-ish English; number n carries
 * "ref-n" once and, for one in a hundred, "quarterly". */
static size_t
text_message(char *buf, size_t len, long n, unsigned *seed)
{
	size_t at = (size_t)snprintf(buf, len, "From: Sender %ld "
	    "<s%ld@example.net>\r\nTo: bench@example.org\r\nSubject: "
	    "%s %s ref-%06ld\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	    "Message-ID: <%ld@bench>\r\n\r\n", n % 997, n % 997,
	    words[n % 40 + 49], words[n % 31 + 50], n, n);
	int col = 0;

	if (n % 100 == 7)
		at += (size_t)snprintf(buf + at, len - at, "quarterly ");
	while (at + 16 < len - 2) {
		/* Squaring skews toward the common words at the front. */
		unsigned r = (unsigned)rand_r(seed) % 1000;
		const char *w = words[(r * r / 1000) * (sizeof(words) /
		    sizeof(*words)) / 1000];
		size_t wl = strlen(w);

		memcpy(buf + at, w, wl);
		at += wl;
		col += (int)wl + 1;
		if (col > 70) {
			memcpy(buf + at, "\r\n", 2);
			at += 2;
			col = 0;
		} else {
			buf[at++] = ' ';
		}
	}
	memcpy(buf + at, "\r\n", 2);
	return at + 2;
}

/* ---- Deliveries ------------------------------------------------------ */

struct run {
	struct store *st;
	int64_t account;
	size_t size;
	double until;
	long count;
	double *lat;
	long nlat;
	unsigned seed;
};

static void *
deliver_main(void *arg)
{
	struct run *r = arg;
	char *buf = malloc(r->size + 1024);

	while (now() < r->until) {
		struct store_delivery_result *res;
		struct store_delivery *d;
		enum store_err err;
		size_t n, len;
		double t0 = now();

		len = text_message(buf, r->size, r->count, &r->seed);
		d = store_delivery_new(r->st, &err);
		if (d == NULL || store_delivery_write(d, buf, len, &err) < 0) {
			fprintf(stderr, "bench_store: write: %s\n",
			    store_err_text(err));
			exit(1);
		}
		store_delivery_add(d, r->account, NULL, 0, NULL, 0);
		if (store_delivery_commit(d, &res, &n) < 0 ||
		    res[0].err != STORE_OK) {
			fprintf(stderr, "bench_store: delivery failed\n");
			exit(1);
		}
		free(res);
		if (r->nlat < LAT_MAX)
			r->lat[r->nlat++] = now() - t0;
		r->count++;
	}
	free(buf);
	return NULL;
}

/* CPU seconds this process has used, every thread. */
static double
cpu_used(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
deliver_run(const char *bench, size_t size, int threads, size_t batch_max,
    enum store_sync sync, const char *sync_name)
{
	struct run *runs = calloc((size_t)threads, sizeof(*runs));
	pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
	double *lat, t0, elapsed, cpu0;
	int64_t account, inbox;
	long total = 0, nlat = 0;
	struct store *st = fresh_store(&account, &inbox);

	store_tune(st, batch_max, sync);
	cpu0 = cpu_used();
	t0 = now();
	for (int i = 0; i < threads; i++) {
		runs[i] = (struct run){ .st = st, .account = account,
		    .size = size, .until = t0 + seconds,
		    .lat = malloc(LAT_MAX * sizeof(double)),
		    .seed = (unsigned)i * 7919u + 1 };
		pthread_create(&tids[i], NULL, deliver_main, &runs[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		total += runs[i].count;
		nlat += runs[i].nlat;
	}
	elapsed = now() - t0;
	cpu0 = cpu_used() - cpu0;
	lat = malloc((size_t)(nlat > 0 ? nlat : 1) * sizeof(*lat));
	nlat = 0;
	for (int i = 0; i < threads; i++) {
		memcpy(lat + nlat, runs[i].lat, (size_t)runs[i].nlat *
		    sizeof(*lat));
		nlat += runs[i].nlat;
		free(runs[i].lat);
	}
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_double);
	printf("bench=%s size=%zu threads=%d group_commit=%s batch_max=%zu "
	    "sync=%s deliveries=%ld seconds=%.2f per_sec=%.0f "
	    "p50_ms=%.2f p99_ms=%.2f cpu_ms_per_delivery=%.3f %s\n", bench,
	    size, threads,
	    batch_max > 1 ? "on" : "off", batch_max, sync_name, total,
	    elapsed, (double)total / elapsed,
	    nlat > 0 ? lat[nlat / 2] * 1000 : 0,
	    nlat > 0 ? lat[nlat * 99 / 100] * 1000 : 0,
	    total > 0 ? cpu0 * 1000 / (double)total : 0, machine);
	fflush(stdout);
	free(lat);
	store_close(&st);
	free(runs);
	free(tids);
}

/* ---- A big mailbox --------------------------------------------------- */

struct fill {
	struct store *st;
	int64_t account;
	long from, to;
};

static void *
fill_main(void *arg)
{
	struct fill *f = arg;
	unsigned seed = (unsigned)f->from + 17;
	char buf[4096];

	for (long n = f->from; n < f->to; n++) {
		struct store_delivery_result *res;
		struct store_delivery *d;
		enum store_err err;
		size_t len = text_message(buf, 2048 + (size_t)(n % 7) * 256,
		    n, &seed), nres;

		d = store_delivery_new(f->st, &err);
		if (d == NULL || store_delivery_write(d, buf, len, &err) < 0)
			exit(1);
		/* One in ten read and flagged, as a real mailbox. */
		store_delivery_add(d, f->account, NULL,
		    n % 10 == 3 ? STORE_FLAG_FLAGGED | STORE_FLAG_SEEN :
		    STORE_FLAG_SEEN, NULL, 1700000000 + n);
		if (store_delivery_commit(d, &res, &nres) < 0 ||
		    res[0].err != STORE_OK)
			exit(1);
		free(res);
	}
	return NULL;
}

static double
median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void
search_run(struct store *st, int64_t inbox, const char *what,
    const struct store_cond *c, int reps)
{
	double t[32];
	size_t n = 0;

	for (int i = 0; i < reps; i++) {
		enum store_err err;
		uint32_t *uids;
		double t0 = now();

		if (store_search(st, inbox, c, &uids, &n, &err) < 0) {
			fprintf(stderr, "bench_store: search: %s\n",
			    store_err_text(err));
			exit(1);
		}
		t[i] = now() - t0;
		free(uids);
	}
	printf("bench=search query=%s mailbox_messages=%ld matches=%zu "
	    "median_ms=%.2f %s\n", what, populate, n, median_of(t, reps) * 1000,
	    machine);
	fflush(stdout);
}

static void
big_mailbox(int reps)
{
	int64_t account, inbox;
	struct store *st = fresh_store(&account, &inbox);
	struct fill fills[64];
	pthread_t tids[64];
	enum store_err err;
	double t0 = now(), t1, t[32];
	char ref[32];

	for (int i = 0; i < 64; i++) {
		fills[i] = (struct fill){ .st = st, .account = account,
		    .from = populate * i / 64, .to = populate * (i + 1) / 64 };
		pthread_create(&tids[i], NULL, fill_main, &fills[i]);
	}
	for (int i = 0; i < 64; i++)
		pthread_join(tids[i], NULL);
	t1 = now();
	store_index_wait(st, &err);
	printf("bench=populate messages=%ld deliver_seconds=%.1f "
	    "index_seconds=%.1f %s\n", populate, t1 - t0, now() - t1, machine);
	fflush(stdout);

	for (int i = 0; i < reps; i++) {
		struct store_msg *list;
		size_t n;
		uint32_t lo = (uint32_t)(populate / 2);
		double s = now();

		if (store_msg_list(st, inbox, lo, lo + 999, &list, &n, &err) <
		    0 || n != 1000) {
			fprintf(stderr, "bench_store: msg_list\n");
			exit(1);
		}
		t[i] = now() - s;
		store_msg_list_free(&list, n);
	}
	printf("bench=list messages=1000 mailbox_messages=%ld median_ms=%.2f "
	    "%s\n", populate, median_of(t, reps) * 1000, machine);

	snprintf(ref, sizeof(ref), "ref-%06ld", populate * 7 / 9);
	{
		struct store_cond rare = { .kind = STORE_COND_TEXT,
		    .text = ref };
		struct store_cond body = { .kind = STORE_COND_BODY,
		    .text = "quarterly" };
		struct store_cond common = { .kind = STORE_COND_BODY,
		    .text = "meeting" };
		struct store_cond flag = { .kind = STORE_COND_FLAG_SET,
		    .n = STORE_FLAG_FLAGGED };
		struct store_cond kids[2] = { flag, body };
		struct store_cond both = { .kind = STORE_COND_AND,
		    .children = kids, .nchildren = 2 };

		search_run(st, inbox, "text_rare", &rare, reps);
		search_run(st, inbox, "body_1pct", &body, reps);
		search_run(st, inbox, "flagged_and_body_1pct", &both, reps);
		search_run(st, inbox, "flagged", &flag, reps);
		search_run(st, inbox, "body_common", &common,
		    reps < 3 ? reps : 3);
	}
	store_close(&st);
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = { 4096, 100 * 1024 };
	static const int threads[] = { 1, 8, 64 };
	int opt, reps = 11, one_threads = 0;
	size_t one_size = 0, one_batch = 0;
	bool is_quick = false;

	while ((opt = getopt(argc, argv, "d:s:n:qr:")) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			populate = atol(optarg);
			break;
		case 'q':
			is_quick = true;
			break;
		case 'r':
			if (sscanf(optarg, "%zu:%d:%zu", &one_size,
			    &one_threads, &one_batch) != 3 || one_threads < 1) {
				fprintf(stderr, "bench_store: -r SIZE:THREADS:"
				    "BATCH_MAX\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: bench_store [-d DIR] "
			    "[-s SECONDS] [-n MESSAGES] [-q] "
			    "[-r SIZE:THREADS:BATCH_MAX]\n");
			return 2;
		}
	}
	if (is_quick)
		reps = 5;
	nftw(dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	describe_machine();
	if (one_threads > 0) {
		deliver_run("deliver", one_size, one_threads, one_batch,
		    STORE_SYNC_AUTO, "auto");
		if (!is_quick)
			nftw(dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
		return 0;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
		for (size_t t = 0; t < sizeof(threads) / sizeof(*threads);
		    t++) {
			deliver_run("deliver", sizes[s], threads[t], 256,
			    STORE_SYNC_AUTO, "auto");
			deliver_run("deliver", sizes[s], threads[t], 1,
			    STORE_SYNC_AUTO, "auto");
		}
	}
	deliver_run("sync", 4096, 64, 256, STORE_SYNC_SYNCFS, "syncfs");
	deliver_run("sync", 4096, 64, 256, STORE_SYNC_FILES, "files");
	big_mailbox(reps);
	nftw(dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
	return 0;
}
