/*
 * authn_int: what the files of src/authn share: one SPF evaluation's
 * state (the counters of §4.6.4, the client address) and the DNS
 * wrapper that enforces them.
 */
#ifndef POSTERN_AUTHN_INT_H
#define POSTERN_AUTHN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authn/authn.h"

/* What a macro expansion or a lookup can end in, beside a value. */
enum spf_err {
	SPF_OK = 0,
	SPF_VOID = 1,		/* the lookup found nothing */
	SPF_TEMP = -1,		/* temperror */
	SPF_PERM = -2,		/* permerror */
};

struct spf_eval {
	const struct authn_dns *dns;
	const struct authn_spf_request *req;
	int family;		/* AF_INET or AF_INET6 */
	unsigned char ip[16];	/* 4 bytes for AF_INET */
	char ip_text[64];	/* %{c} */
	unsigned lookups;	/* terms counted against the 10 */
	unsigned voids;
	double deadline;	/* CLOCK_MONOTONIC seconds, 0: none */
	char *reason;		/* the first error, for the outcome */
};

/* Starts an evaluation for req's client; -1 when req->ip is not an
 * address. */
int spf_eval_init(struct spf_eval *ev, const struct authn_dns *dns,
    const struct authn_spf_request *req);
/* Sets ev->reason (the first one wins) and returns rc. */
enum spf_err spf_fail(struct spf_eval *ev, enum spf_err rc,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts a term against the lookup limit; SPF_PERM past it. */
enum spf_err spf_lookup_count(struct spf_eval *ev);
/* Asks the DNS (name may end in a dot). SPF_OK with *n_out >= 1 records
 * (free with spf_rrs_free); SPF_VOID, counted as a void lookup when
 * is_void_counted (SPF_PERM past the limit); SPF_TEMP on a DNS error or
 * past the deadline. A malformed name is a void answer, never asked. */
enum spf_err spf_query(struct spf_eval *ev, enum authn_dns_type type,
    const char *name, bool is_void_counted, char ***rrs_out, size_t *n_out);
void spf_rrs_free(char **rrs, size_t n);
/* Is name a domain name we can ask about: labels of 1-63 bytes, at most
 * 253 in all, printable, a trailing dot allowed; is_multi: two labels. */
bool is_spf_domain_ok(const char *name, bool is_multi);

/* Expands a macro-string (authn_spf_macro.c). Returns the expansion, or
 * NULL with *err_out set (SPF_PERM: syntax or too long; SPF_TEMP never:
 * %{p} errors give "unknown"). */
char *spf_expand(struct spf_eval *ev, const char *domain, const char *sender,
    const char *spec, size_t len, bool is_exp, enum spf_err *err_out);
/* Checks the syntax of a macro-string without expanding it: is_exp allows
 * c, r, t and spaces. Returns 0 or -1. */
int spf_macro_check(const char *spec, size_t len, bool is_exp);
/* The same, and *tail_out: where the literal text after the last
 * macro-expand begins (len when the string ends with one). */
int spf_macro_scan(const char *spec, size_t len, bool is_exp,
    size_t *tail_out);
/* The validated domain name of the client for %{p} and ptr (§5.5): the
 * names of its PTR records whose addresses include it, at most
 * AUTHN_SPF_PTR_MAX asked. Returns the count, names in names_out (free
 * with spf_rrs_free); 0 on any error. */
size_t spf_ptr_validated(struct spf_eval *ev, char ***names_out);
/* The domain after macro expansion, cut from the left to 253 bytes
 * (§7.3? §4.8: whole labels dropped). In place. */
void spf_domain_truncate(char *name);

/* ---- The resolver of pool threads (authn_dns.c) ---------------------- */

struct authn_dns_channel {
	void *channel;		/* ares_channel */
	double deadline;	/* CLOCK_MONOTONIC seconds, 0: none */
	unsigned queries;	/* asked so far */
	uint32_t ttl;		/* the smallest TTL of the last answer's
				 * records of the type asked, seconds */
};

/* Once, on the main thread, before any channel. */
int authn_dns_library_init(char *err, size_t errlen);
/* A channel on server:port (NULL: the system's resolver) that gives up
 * at deadline. Returns 0, or -1 with err set. */
int authn_dns_open(struct authn_dns_channel *c, const char *server,
    uint16_t port, double deadline, char *err, size_t errlen);
void authn_dns_close(struct authn_dns_channel *c);
/* The query of struct authn_dns, arg a struct authn_dns_channel; blocks
 * the calling thread. */
enum authn_dns_rc authn_dns_query(void *arg, enum authn_dns_type type,
    const char *name, char ***rrs_out, size_t *n_out);

/* ---- Crypto for DKIM (authn_crypto.c, the OpenSSL of authn) --------- */

struct authn_sha256;

struct authn_sha256 *authn_sha256_new(void);
/* An authn_dkim_sink: arg is a struct authn_sha256. */
void authn_sha256_update(void *arg, const void *data, size_t len);
/* Writes the digest and frees *h. */
void authn_sha256_final(struct authn_sha256 **h, unsigned char out[32]);
void authn_sha256_free(struct authn_sha256 **h);

enum authn_key_type {
	AUTHN_KEY_RSA,		/* DER SubjectPublicKeyInfo or RSAPublicKey */
	AUTHN_KEY_ED25519,	/* the raw 32 bytes (RFC 8463 §4) */
};

enum authn_verify_rc {
	AUTHN_VERIFY_OK,
	AUTHN_VERIFY_BAD,	/* the signature does not match */
	AUTHN_VERIFY_KEY,	/* the key cannot be read, or is not of type */
	AUTHN_VERIFY_KEY_SIZE,	/* an RSA key over max_bits: not tried */
};

/* Verifies a DKIM signature over the SHA-256 hash of the header data:
 * RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 §3.3.1), or PureEdDSA over
 * the hash (RFC 8463 §3). *bits_out: the key's size in bits. */
enum authn_verify_rc authn_crypto_verify(enum authn_key_type type,
    const unsigned char *key, size_t keylen, unsigned max_bits,
    const unsigned char hash[32], const unsigned char *sig, size_t siglen,
    unsigned *bits_out);

#endif
