/*
 * http_metrics: /metrics in the Prometheus text exposition format
 * (version 0.0.4) from the counters of lib/metrics, and /healthz. Both
 * only on listeners with metrics = yes (a loopback or internal port).
 */
#include "http/http_int.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
/* libasan's; GCC 12 does not ship sanitizer/allocator_interface.h. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "lib/log.h"
#include "lib/metrics.h"
#include "store/store.h"

/* /healthz fails below this much free space in the data directory: a
 * store that cannot take one more message is not healthy. */
#define HEALTH_FREE_MIN (16 * 1024 * 1024)

static void
family(struct http_str *b, const char *name, const char *type,
    const char *help)
{
	http_str_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* The queue's size and the age of its oldest entry, read from the store
 * at each scrape (one COUNT over the queue table). When the store does
 * not answer, neither sample is written rather than a wrong one. */
static void
queue_stats(struct http_session *s, struct http_str *b)
{
	uint64_t n;
	int64_t oldest, age;
	enum store_err err;

	if (store_queue_stats(s->ctx->store, &n, &oldest, &err) < 0) {
		log_warn(s->sid, "http.metrics queue=unreadable error=\"%s\"",
		    store_err_text(err));
		return;
	}
	age = n > 0 ? (int64_t)time(NULL) - oldest : 0;
	family(b, "postern_queue_size", "gauge",
	    "Entries in the outbound queue (one per recipient, held ones "
	    "and success reports included).");
	http_str_printf(b, "postern_queue_size %" PRIu64 "\n", n);
	family(b, "postern_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest entry of the outbound queue (0 when empty).");
	http_str_printf(b, "postern_queue_oldest_age_seconds %" PRId64 "\n",
	    age < 0 ? 0 : age);
}

static void
commit_histogram(struct http_str *b)
{
	uint64_t c[METRICS_COMMIT_NBUCKETS + 1], sum;

	metrics_commit_read(c, &sum);
	family(b, "postern_store_commit_seconds", "histogram",
	    "Time of each group commit of the store writer (apply the "
	    "batch, sync the message files, COMMIT).");
	for (size_t i = 0; i < METRICS_COMMIT_NBUCKETS; i++)
		http_str_printf(b, "postern_store_commit_seconds_bucket{le="
		    "\"%g\"} %" PRIu64 "\n", metrics_commit_bounds[i], c[i]);
	http_str_printf(b, "postern_store_commit_seconds_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\npostern_store_commit_seconds_sum %" PRIu64 ".%06"
	    PRIu64 "\npostern_store_commit_seconds_count %" PRIu64 "\n",
	    c[METRICS_COMMIT_NBUCKETS], sum / 1000000, sum % 1000000,
	    c[METRICS_COMMIT_NBUCKETS]);
}

/* Memory: the resident set from /proc/self/statm (what the kernel
 * charges the process) and the bytes malloc has handed out and not had
 * back (mallinfo2: its arenas plus mmap'd blocks; under AddressSanitizer,
 * whose allocator mallinfo2 does not see, the sanitizer's own count). */
static size_t
heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#endif
}

static void
memory(struct http_str *b)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);

	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &size, &resident) == 2 &&
		    page > 0) {
			family(b, "postern_memory_resident_bytes", "gauge",
			    "Resident memory of the process (RSS).");
			http_str_printf(b, "postern_memory_resident_bytes "
			    "%llu\n", resident * (unsigned long long)page);
		}
		fclose(f);
	}
	family(b, "postern_memory_heap_bytes", "gauge",
	    "Memory allocated with malloc and not freed.");
	http_str_printf(b, "postern_memory_heap_bytes %zu\n", heap_in_use());
}

void
http_metrics(struct http_session *s, const struct http_request *req)
{
	static const struct {
		enum metric m;
		const char *label;
	} logins[] = {
		{ METRIC_LOGINS_OK, "ok" },
		{ METRIC_LOGINS_FAILED, "failed" },
		{ METRIC_LOGINS_LOCKED, "locked" },
		{ METRIC_LOGINS_DISABLED, "disabled" },
		{ METRIC_LOGINS_TEMPFAIL, "tempfail" },
	}, queue[] = {
		{ METRIC_RECIPIENTS_DELIVERED, "delivered" },
		{ METRIC_RECIPIENTS_DEFERRED, "deferred" },
		{ METRIC_RECIPIENTS_FAILED, "failed" },
	};
	struct http_str b = { 0 };
	struct http_response r = {
		.status = 200,
		.type = "text/plain; version=0.0.4; charset=utf-8",
	};

	family(&b, "postern_connections_total", "counter",
	    "Connections accepted, by listener protocol.");
	for (int p = 0; p < METRICS_NPROTO; p++)
		http_str_printf(&b, "postern_connections_total{protocol=\"%s\"} "
		    "%" PRIu64 "\n", config_proto_name(p),
		    metrics_conn_total(p));
	family(&b, "postern_connections_current", "gauge",
	    "Connections open now, by listener protocol.");
	for (int p = 0; p < METRICS_NPROTO; p++)
		http_str_printf(&b, "postern_connections_current{protocol="
		    "\"%s\"} %" PRIu64 "\n", config_proto_name(p),
		    metrics_conn_current(p));
	family(&b, "postern_tls_handshakes_total", "counter",
	    "TLS handshakes of clients (implicit TLS and STARTTLS), by "
	    "listener protocol and result.");
	for (int p = 0; p < METRICS_NPROTO; p++)
		http_str_printf(&b, "postern_tls_handshakes_total{protocol="
		    "\"%s\",result=\"ok\"} %" PRIu64 "\n"
		    "postern_tls_handshakes_total{protocol=\"%s\",result="
		    "\"failed\"} %" PRIu64 "\n", config_proto_name(p),
		    metrics_tls_total(p, true), config_proto_name(p),
		    metrics_tls_total(p, false));
	family(&b, "postern_logins_total", "counter",
	    "Logins decided (IMAP, POP3, submission), by result.");
	for (size_t i = 0; i < sizeof(logins) / sizeof(logins[0]); i++)
		http_str_printf(&b, "postern_logins_total{result=\"%s\"} %"
		    PRIu64 "\n", logins[i].label, metrics_get(logins[i].m));
	family(&b, "postern_messages_received_total", "counter",
	    "Messages taken by SMTP and submission (answered 250 after "
	    "DATA or BDAT).");
	http_str_printf(&b, "postern_messages_received_total %" PRIu64 "\n",
	    metrics_get(METRIC_MESSAGES_RECEIVED));
	family(&b, "postern_local_deliveries_total", "counter",
	    "Messages stored in a local mailbox, one per recipient account "
	    "(by SMTP, and the queue's reports to local senders).");
	http_str_printf(&b, "postern_local_deliveries_total %" PRIu64 "\n",
	    metrics_get(METRIC_DELIVERIES_LOCAL));
	family(&b, "postern_queued_recipients_total", "counter",
	    "Recipients in other domains written to the outbound queue.");
	http_str_printf(&b, "postern_queued_recipients_total %" PRIu64 "\n",
	    metrics_get(METRIC_RECIPIENTS_QUEUED));
	family(&b, "postern_messages_bounced_total", "counter",
	    "Bounce reports (RFC 3464, action failed) the queue sent back "
	    "to senders.");
	http_str_printf(&b, "postern_messages_bounced_total %" PRIu64 "\n",
	    metrics_get(METRIC_MESSAGES_BOUNCED));
	queue_stats(s, &b);
	family(&b, "postern_queue_recipients_total", "counter",
	    "Outbound delivery attempts per recipient, by result.");
	for (size_t i = 0; i < sizeof(queue) / sizeof(queue[0]); i++)
		http_str_printf(&b, "postern_queue_recipients_total{result="
		    "\"%s\"} %" PRIu64 "\n", queue[i].label,
		    metrics_get(queue[i].m));
	family(&b, "postern_imap_idle_sessions", "gauge",
	    "IMAP sessions in IDLE now.");
	http_str_printf(&b, "postern_imap_idle_sessions %" PRIu64 "\n",
	    metrics_idle_current());
	commit_histogram(&b);
	memory(&b);
	family(&b, "postern_http_responses_total", "counter",
	    "HTTP responses, by status class.");
	for (unsigned c = 1; c <= 5; c++)
		http_str_printf(&b, "postern_http_responses_total{code=\"%uxx\"} "
		    "%" PRIu64 "\n", c, http_status_class_total(c));
	family(&b, "postern_start_time_seconds", "gauge",
	    "When the server started, in seconds since the Unix epoch.");
	http_str_printf(&b, "postern_start_time_seconds %" PRId64 "\n",
	    metrics_start_time());
	r.body = b.data;
	r.len = b.len;
	http_respond(s, req, &r);
	http_str_free(&b);
}

/* 200 when the store answers a query and its data directory is writable
 * with room for mail; else 503 with the reason. A read of the domain
 * table stands for the database; the file system is asked directly
 * (no write: a probe every few seconds would wear the disk and the WAL). */
void
http_healthz(struct http_session *s, const struct http_request *req)
{
	struct http_response r = {
		.status = 200,
		.type = "text/plain; charset=utf-8",
		.body = "ok\n",
		.len = 3,
	};
	char **domains = NULL;
	enum store_err err;
	struct statvfs fs;
	const char *why = NULL;

	if (store_domain_list(s->ctx->store, &domains, &err) < 0)
		why = "The store does not answer.";
	else if (access(s->cfg->data_dir, W_OK) < 0)
		why = "The data directory is not writable.";
	else if (statvfs(s->cfg->data_dir, &fs) == 0 &&
	    (uint64_t)fs.f_bavail * fs.f_frsize < HEALTH_FREE_MIN)
		why = "The data directory's file system is full.";
	store_strings_free(&domains);
	if (why != NULL) {
		log_warn(s->sid, "http.healthz result=failed reason=\"%s\"",
		    why);
		http_respond_error(s, req, 503, why, NULL);
		return;
	}
	http_respond(s, req, &r);
}
