/*
 * queue: outbound delivery (DESIGN.md, queue runner). Mail our users send
 * to other domains waits in the store's outbound queue (store.h); the
 * runner claims what is due, looks up the domain's MX hosts with c-ares,
 * hands the message to them over SMTP (STARTTLS when offered, PIPELINING,
 * several recipients per transaction), and records each recipient's
 * outcome: delivered, deferred with backoff, or bounced with an RFC 3464
 * report to the sender's INBOX. Mail from a domain with a DKIM key
 * (`postern dkim generate`) is signed on the way out (RFC 6376, 8463);
 * TLS follows [queue] tls and tls_domains (none, may, encrypt, verify).
 *
 * Threads. The runner has one thread and one event_base of its own;
 * queue_runner_start() and queue_runner_stop() are called from the main
 * thread.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct queue_runner;
struct store;

/* A runner for the store st under configuration cfg (both borrowed; they
 * must outlive it). Returns NULL with err set. */
struct queue_runner *queue_runner_new(const struct config *cfg,
    struct store *st, char *err, size_t errlen);
/* Starts the runner's thread. Returns 0, or -1 with err set. */
int queue_runner_start(struct queue_runner *r, char *err, size_t errlen);
/* Stops the thread: deliveries under way are dropped and their entries
 * stay in the queue, due again at once when the next runner starts (at
 * most a duplicate for the peer, never a loss). */
void queue_runner_stop(struct queue_runner *r);
void queue_runner_free(struct queue_runner **r);
/* SIGHUP: the runner takes the [queue] settings (and hostname) of cfg,
 * from its own thread. The resolver and data_dir keep their values, and
 * concurrency its 0 or not, until a restart. Borrows cfg. */
void queue_runner_reload(struct queue_runner *r, const struct config *cfg);

/* DKIM keys (RFC 6376) of our domains live in DATA/dkim: DOMAIN.pem (the
 * private key, mode 0600) and DOMAIN.selector (one line, the selector of
 * the published record). These return the two paths (caller frees);
 * domain must already be a valid, lowercase domain name. */
char *queue_dkim_key_path(const char *data_dir, const char *domain);
char *queue_dkim_selector_path(const char *data_dir, const char *domain);

/* Blocking DNS lookups for the admin command (`postern dns check`,
 * `postern doctor`; queue_lookup.c), through the resolver the runner asks:
 * server (numeric; NULL: the system's) and port. Main thread only. */
enum queue_lookup_result {
	QUEUE_LOOKUP_OK,
	QUEUE_LOOKUP_NXDOMAIN,	/* no such name */
	QUEUE_LOOKUP_NODATA,	/* the name, without records of the type */
	QUEUE_LOOKUP_FAIL,	/* timeout, SERVFAIL, refused, bad answer */
};
struct queue_lookup;
struct queue_lookup *queue_lookup_new(const char *server, uint16_t port,
    char *err, size_t errlen);
void queue_lookup_free(struct queue_lookup **l);
/* Asks for the records of type_name ("A", "AAAA", "MX", "TXT", "SRV",
 * "CNAME", "CAA", "PTR") at name and waits. On QUEUE_LOOKUP_OK, *rrs_out
 * is an array of *n_out strings (free with queue_lookup_rrs_free), each
 * one record's data as a zone file shows it ("10 mx.example.com.", a
 * TXT's strings joined and unquoted, "0 issue \"letsencrypt.org\""). */
enum queue_lookup_result queue_lookup_query(struct queue_lookup *l,
    const char *name, const char *type_name, char ***rrs_out,
    size_t *n_out);
void queue_lookup_rrs_free(char ***rrs, size_t n);

#endif
