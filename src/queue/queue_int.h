/*
 * queue_int: what the files of src/queue share: the SMTP reply reader of
 * the client (queue_reply.c), the DNS lookups (queue_dns.c) and the
 * delivery status notifications (queue_dsn.c).
 */
#ifndef POSTERN_QUEUE_INT_H
#define POSTERN_QUEUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authn/authn.h"
#include "lib/parse.h"

struct event_base;
struct evbuffer;

/* ---- SMTP replies (queue_reply.c) ----------------------------------- */

/* Longest reply line we read (RFC 5321 §4.5.3.1.5 says 512 with CRLF; we
 * allow more from lax servers), lines in one reply, and the bytes of text
 * we keep of it. */
#define QUEUE_REPLY_LINE_MAX 2048
#define QUEUE_REPLY_LINES_MAX 100
#define QUEUE_REPLY_TEXT_MAX 4096

/* One reply, possibly multi-line (RFC 5321 §4.2.1). */
struct queue_reply {
	int code;		/* 200..599 */
	char text[QUEUE_REPLY_TEXT_MAX];	/* the lines joined by "\n",
						 * each "250-..." as sent */
	size_t len;
	size_t nlines;
	/* EHLO keywords, when the reply was to EHLO. */
	bool has_starttls, has_pipelining, has_size, has_8bitmime,
	    has_smtputf8, has_dsn;
	uint64_t size_max;	/* SIZE parameter; 0: none given */
};

/* Reads one complete reply out of in. Returns PARSE_DONE with *r filled
 * (and the bytes consumed), PARSE_MORE when the reply is not complete yet
 * (nothing consumed), PARSE_ERROR for a malformed or oversized reply. */
enum parse_rc queue_reply_read(struct evbuffer *in, struct queue_reply *r);
/* Fills the EHLO keywords of r from its lines (RFC 5321 §4.1.1.1). */
void queue_reply_ehlo(struct queue_reply *r);
/* The reply on one line ("550 5.1.1 no such user"; lines joined by a
 * space), for logs, queue entries and bounces, into buf. */
const char *queue_reply_line(const struct queue_reply *r, char *buf,
    size_t len);
/* The RFC 3463 enhanced status code of r ("5.1.1"), or one made from the
 * reply code ("5.0.0"), into buf. */
const char *queue_reply_status(const struct queue_reply *r, char *buf,
    size_t len);

/* ---- DNS (queue_dns.c) ---------------------------------------------- */

struct queue_dns;

enum queue_dns_result {
	QUEUE_DNS_OK,
	QUEUE_DNS_TEMP,		/* timeout, SERVFAIL, refused: try later */
	QUEUE_DNS_NXDOMAIN,	/* the domain does not exist */
	QUEUE_DNS_NODATA,	/* the name exists, without such records */
	QUEUE_DNS_NULL_MX,	/* RFC 7505: the domain takes no mail */
};

/* The most MX hosts and addresses we use for one domain. */
#define QUEUE_DNS_HOSTS_MAX 16
#define QUEUE_DNS_ADDRS_MAX 16

struct queue_mx {
	char *host;
	uint16_t pref;
};

/* A resolver on base, asking server (numeric address; NULL: the system's
 * resolv.conf) on port. Returns NULL with err set. */
struct queue_dns *queue_dns_new(struct event_base *base, const char *server,
    uint16_t port, char *err, size_t errlen);
void queue_dns_free(struct queue_dns **dns);

/* Looks up the MX records of domain. cb runs later, on base's thread,
 * exactly once (also when the resolver is freed: QUEUE_DNS_TEMP), with
 * the hosts by ascending preference (borrowed for the call). */
typedef void (*queue_dns_mx_cb)(void *arg, enum queue_dns_result res,
    const struct queue_mx *mx, size_t n);
void queue_dns_mx(struct queue_dns *dns, const char *domain,
    queue_dns_mx_cb cb, void *arg);

/* Looks up the IPv4 and IPv6 addresses of host. The addresses are struct
 * sockaddr_storage, port unset, borrowed for the call. */
struct sockaddr_storage;
typedef void (*queue_dns_addr_cb)(void *arg, enum queue_dns_result res,
    const struct sockaddr_storage *addrs, size_t n);
void queue_dns_addr(struct queue_dns *dns, const char *host,
    queue_dns_addr_cb cb, void *arg);

/* ---- Delivery status notifications (queue_dsn.c) --------------------- */

enum queue_dsn_action {
	QUEUE_DSN_FAILED,
	QUEUE_DSN_DELAYED,
	QUEUE_DSN_DELIVERED,	/* stored in a local mailbox */
	QUEUE_DSN_RELAYED,	/* handed to a next hop without DSN (RFC
				 * 3461 §6.2) */
};

/* One recipient's line of a report. */
struct queue_dsn_rcpt {
	const char *rcpt;
	const char *orcpt;	/* ORCPT as given ("rfc822;x@y"), or NULL */
	const char *status;	/* "5.1.1" */
	const char *remote_mta;	/* host name, or NULL */
	const char *diagnostic;	/* the remote reply on one line, or a
				 * sentence of ours; NULL: none */
};

struct queue_dsn {
	enum queue_dsn_action action;
	const char *reporting_mta;	/* our host name */
	const char *sender;		/* who gets the report */
	const char *envid;		/* RFC 3461 ENVID, or NULL */
	int64_t arrival;		/* when we accepted the message */
	int64_t now;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *original;		/* the message, or its header */
	size_t original_len;
	bool is_full;			/* original is the whole message */
	const char *boundary;		/* unique MIME boundary */
	const char *message_id;		/* "<...>" */
};

/* The report as a message (CRLF line ends), malloc'ed; *len_out its
 * length. */
char *queue_dsn_build(const struct queue_dsn *dsn, size_t *len_out);

/* Whether the RFC 3461 NOTIFY of dsn_rcpt (may be NULL) asks for a report
 * of kind word ("SUCCESS", "FAILURE", "DELAY"): without NOTIFY, failures
 * and delays are reported, successes not (RFC 3461 §4.1). */
bool has_queue_notify(const char *dsn_rcpt, const char *word);
/* The value of key ("ENVID", "ORCPT", "RET") in params, into buf; NULL
 * when absent. */
const char *queue_dsn_param(const char *params, const char *key, char *buf,
    size_t len);

/* ---- DKIM keys of our domains (queue_dkim_keys.c) -------------------- */

struct net_key;
struct queue_dkim_keys;

/* A cache of the keys under data_dir's dkim files (queue.h). */
struct queue_dkim_keys *queue_dkim_keys_new(const char *data_dir);
void queue_dkim_keys_free(struct queue_dkim_keys **k);
/* The key of domain (lowercase, valid) and its selector: read once, and
 * again only when the key or selector file changed. Returns NULL when the
 * domain has no selector or key (err says why when a file does not
 * load). The key and selector stay valid until the next call. */
const struct net_key *queue_dkim_keys_get(struct queue_dkim_keys *k,
    const char *domain, const char **selector_out, char *err,
    size_t errlen);
/* Keys read from disk so far (tests). */
unsigned queue_dkim_keys_loads(const struct queue_dkim_keys *k);

/* ---- DKIM signing (queue_dkim.c) ------------------------------------ */

struct net_key;
struct auth_sha256;

/* The body hash in steps: authn's canonicalizer (RFC 6376 §3.4.4
 * relaxed, the one the verifier uses), then SHA-256. */
struct queue_dkim_body {
	struct auth_sha256 *hash;
	struct authn_dkim_body canon;
};

void queue_dkim_body_init(struct queue_dkim_body *b);
void queue_dkim_body_update(struct queue_dkim_body *b, const char *data,
    size_t len);
/* Writes the hash and frees what init took. */
void queue_dkim_body_final(struct queue_dkim_body *b, unsigned char out[32]);
/* The DKIM-Signature field, CRLF included, for the header block header
 * (hlen bytes, fields with their CRLFs, no empty line) and body hash bh;
 * NULL when the header has no From or signing failed. Caller frees. */
char *queue_dkim_sign(const char *header, size_t hlen,
    const unsigned char bh[32], const struct net_key *key,
    const char *domain, const char *selector, int64_t now);
/* The same for the message in fd (size bytes): reads it whole. */
char *queue_dkim_sign_fd(int fd, uint64_t size, const struct net_key *key,
    const char *domain, const char *selector, int64_t now);

/* A growing NUL-terminated string (queue_text.c); free p when done. */
struct queue_text {
	char *p;
	size_t len, cap;
};

void queue_text_add(struct queue_text *t, const char *s, size_t n);
void queue_text_str(struct queue_text *t, const char *s);
void queue_text_printf(struct queue_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A message body on its way to the next hop, fed in pieces (queue_text.c):
 * every line end, CRLF, a bare CR or a bare LF, goes out as CRLF (RFC
 * 5321 §2.3.8: a bare CR or LF must not be sent), and a dot that starts a
 * line is doubled (§4.5.2). */
struct queue_stuff {
	bool is_bol;		/* what went out ends a line */
	bool has_cr;		/* a CR waits: CRLF, or a bare CR's line end */
};

void queue_stuff_init(struct queue_stuff *st);
/* Writes the n bytes of in to out, which must hold 2 * n + 2 bytes.
 * Returns the bytes written. */
size_t queue_stuff_feed(struct queue_stuff *st, const char *in, size_t n,
    char *out);
/* The end: a last line end if the body lacks one, then ".\r\n". out
 * must hold QUEUE_STUFF_END_MAX bytes. Returns the bytes written. */
#define QUEUE_STUFF_END_MAX 5
size_t queue_stuff_end(struct queue_stuff *st, char *out);

#endif
