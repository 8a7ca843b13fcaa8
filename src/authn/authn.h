/*
 * authn: message authentication of inbound mail (issue #16). SPF (RFC
 * 7208) for the MAIL FROM and HELO identities, and the
 * Authentication-Results header field (RFC 8601) that carries the results
 * into the delivered message. DKIM, DMARC and ARC will add their results
 * through the same header builder (authn_ar_*).
 *
 * The SPF evaluator (authn_spf_check_*) is a pure function of its request
 * and of the DNS answers it gets through struct authn_dns: unit tests give
 * it a table, the server a c-ares resolver. The server never runs it on an
 * event loop: authn_spf_submit() runs it on authn's own thread pool with
 * blocking c-ares queries and calls back on the submitting loop. A slow
 * DNS server holds a pool thread, never a worker.
 *
 * Threads: struct authn is shared by every worker; the evaluator and the
 * header builder are thread-safe (no shared state).
 */
#ifndef POSTERN_AUTHN_H
#define POSTERN_AUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct authn_ar;

/* ---- DNS as the evaluator sees it -------------------------------------- */

enum authn_dns_type {
	AUTHN_DNS_A,
	AUTHN_DNS_AAAA,
	AUTHN_DNS_MX,
	AUTHN_DNS_TXT,
	AUTHN_DNS_PTR,
};

enum authn_dns_rc {
	AUTHN_DNS_OK,		/* *n_out >= 1 records */
	AUTHN_DNS_NXDOMAIN,	/* RCODE 3 */
	AUTHN_DNS_NODATA,	/* RCODE 0, no record of the type */
	AUTHN_DNS_FAIL,		/* SERVFAIL, timeout, a bad answer */
};

/* query() answers one question: name has no trailing dot. On
 * AUTHN_DNS_OK, *rrs_out is an array of *n_out strings (the evaluator
 * frees each and the array with free()): A and AAAA as inet_ntop text,
 * MX as "PREFERENCE HOST", PTR as a host name (no trailing dot), TXT as
 * the record's strings joined (RFC 7208 §3.3). */
struct authn_dns {
	enum authn_dns_rc (*query)(void *arg, enum authn_dns_type type,
	    const char *name, char ***rrs_out, size_t *n_out);
	void *arg;
};

/* Drives a c-ares channel (an ares_channel, passed as a pointer so that
 * this header needs no c-ares) until *done is set by a callback, c-ares
 * has nothing left to wait for, or deadline (CLOCK_MONOTONIC seconds)
 * passes, which cancels the channel's queries. poll(), not select(): a
 * busy server's descriptors pass FD_SETSIZE. Shared by every c-ares user
 * (the SPF/DKIM/DMARC lookups and the queue's MX lookups). */
void authn_dns_wait(void *channel, const bool *done, double deadline);

/* ---- SPF (RFC 7208) ---------------------------------------------------- */

/* §2.6, in the order of the RFC. */
enum authn_spf_result {
	AUTHN_SPF_NONE,
	AUTHN_SPF_NEUTRAL,
	AUTHN_SPF_PASS,
	AUTHN_SPF_FAIL,
	AUTHN_SPF_SOFTFAIL,
	AUTHN_SPF_TEMPERROR,
	AUTHN_SPF_PERMERROR,
};

/* Bounds on hostile input (DESIGN.md, authn). */
#define AUTHN_SPF_RECORD_MAX 4096	/* a record's text, bytes */
#define AUTHN_SPF_TERMS_MAX 256		/* terms of one record */
#define AUTHN_SPF_EXPAND_MAX 4096	/* a macro expansion's result */
#define AUTHN_SPF_LOOKUPS_MAX 10	/* §4.6.4 */
#define AUTHN_SPF_VOID_MAX 2		/* §4.6.4 */
#define AUTHN_SPF_MX_MAX 10		/* §4.6.4: MX names of one mx */
#define AUTHN_SPF_PTR_MAX 10		/* §4.6.4: PTR names looked at */
#define AUTHN_SPF_RRS_MAX 64		/* records taken from one answer */

/* "none", "neutral", "pass", ... as in RFC 8601 §2.7.2. */
const char *authn_spf_result_name(enum authn_spf_result r);

/* What an SMTP transaction tells SPF (borrowed strings). */
struct authn_spf_request {
	const char *ip;		/* the client, numeric (an IPv4-mapped IPv6
				 * address counts as IPv4, §5) */
	const char *helo;	/* EHLO/HELO argument, or NULL */
	const char *sender;	/* MAIL FROM address, "" for <> */
	const char *receiver;	/* our host name, %{r} */
	time_t now;		/* %{t} */
	unsigned timeout;	/* seconds for the whole check (§4.6.4);
				 * 0: no limit */
};

struct authn_spf_outcome {
	enum authn_spf_result result;
	char *domain;		/* the domain checked, or NULL */
	char *sender;		/* the <sender> used (postmaster@... for <>
				 * and HELO, §2.4, §2.3) */
	/* On fail: the explanation of §6.2 (exp=, expanded), or NULL. */
	char *explanation;
	/* What decided it: "mechanism -all matched", "no SPF record",
	 * "too many DNS lookups", "record: unknown mechanism 'foo'". */
	char *reason;
	unsigned lookups;	/* terms that counted against the 10 */
	unsigned voids;
};

/* check_host() of §4 for the MAIL FROM identity (§2.4): the sender's
 * domain, or postmaster@HELO for the null sender; none without a usable
 * domain. Fills *out (free with authn_spf_outcome_deinit). */
void authn_spf_check_mailfrom(const struct authn_dns *dns,
    const struct authn_spf_request *req, struct authn_spf_outcome *out);
/* The HELO identity (§2.3): postmaster@HELO; none when HELO is not a
 * domain name (an address literal, a single label). */
void authn_spf_check_helo(const struct authn_dns *dns,
    const struct authn_spf_request *req, struct authn_spf_outcome *out);
/* check_host(ip, domain, sender) itself. */
void authn_spf_check_host(const struct authn_dns *dns,
    const struct authn_spf_request *req, const char *domain,
    const char *sender, struct authn_spf_outcome *out);
void authn_spf_outcome_deinit(struct authn_spf_outcome *o);
/* Is s a numeric IPv4 or IPv6 address? */
bool is_authn_spf_ip(const char *s);

/* The parser alone (also for the fuzz harness): is text an SPF record
 * (§4.5: "v=spf1" then a space or its end)? */
bool is_authn_spf_record(const char *text, size_t len);
/* Parses a record (§4.6, §12). Returns 0, or -1 with the syntax error in
 * err (a permerror). */
int authn_spf_record_check(const char *text, size_t len, char *err,
    size_t errlen);
/* Expands a macro-string (§7) against req with domain as %{d} and sender
 * as <sender>; is_exp allows c, r and t (explanations). DNS is asked only
 * for %{p}. Returns the expansion (caller frees), or NULL when the
 * string is malformed or the result is longer than AUTHN_SPF_EXPAND_MAX. */
char *authn_spf_macro_expand(const struct authn_dns *dns,
    const struct authn_spf_request *req, const char *domain,
    const char *sender, const char *spec, size_t len, bool is_exp);

/* ---- DKIM verification (RFC 6376, RFC 8463) ----------------------------- */

/* The result of one signature, in RFC 8601 §2.7.1's words. */
enum authn_dkim_status {
	AUTHN_DKIM_NONE,	/* the message has no signature */
	AUTHN_DKIM_PASS,
	AUTHN_DKIM_FAIL,	/* bad signature or body hash, expired,
				 * revoked key, key refuses the signature */
	AUTHN_DKIM_NEUTRAL,	/* a failure under a testing key (t=y) */
	AUTHN_DKIM_POLICY,	/* valid but not acceptable to us: an RSA
				 * key under 1024 bits */
	AUTHN_DKIM_TEMPERROR,	/* the key could not be fetched (DNS) */
	AUTHN_DKIM_PERMERROR,	/* a malformed signature or key record, no
				 * key, an unknown algorithm */
};

/* Signatures verified per message (the topmost ones); more are
 * counted and ignored (a hostile message must not cost more). */
#define AUTHN_DKIM_SIGS_MAX 5

/* One signature's result, for Authentication-Results and for DMARC
 * (which wants d=, the result, and the selector for its reports). */
struct authn_dkim_result {
	char domain[256];	/* d= (SDID), lowercase; "" if unreadable */
	char selector[64];	/* s= */
	int result;		/* enum authn_dkim_status */
	char b[9];		/* the first 8 characters of b= (header.b,
				 * RFC 6008) */
	char algorithm[16];	/* a= */
	bool is_testing;	/* the key says t=y */
	bool has_length;	/* l= signs only part of the body */
	uint64_t unsigned_tail;	/* canonical body bytes after l= (not
				 * signed: content anyone could add) */
	char reason[160];	/* what decided it, for logs and comments */
};

/* The results of a message, in the order of its fields (topmost first). */
struct authn_dkim_verdict {
	struct authn_dkim_result sigs[AUTHN_DKIM_SIGS_MAX];
	size_t n;		/* 0: none */
	size_t ignored;		/* DKIM-Signature fields past the bound */
};

/* "none", "pass", "fail", ... (RFC 8601 §2.7.1). */
const char *authn_dkim_status_name(enum authn_dkim_status r);

/* Bounds on hostile input (DESIGN.md, authn). */
#define AUTHN_DKIM_FIELDS_MAX 2000	/* header fields looked at */
#define AUTHN_DKIM_H_MAX 128		/* names in one h= */
#define AUTHN_DKIM_KEY_RECORD_MAX 4096	/* a key record's text, bytes */
#define AUTHN_DKIM_KEY_BITS_MIN 1024	/* smaller RSA keys: policy */
#define AUTHN_DKIM_KEY_BITS_MAX 8192	/* larger: permerror, not tried */

/* One message's verification, from its header section on. */
struct authn_dkim;

/* Reads the DKIM-Signature fields of a header section (CRLF lines; the
 * empty line that ends it may be included; copied); now: the time x=
 * is compared with. Returns NULL when there is no DKIM-Signature. */
struct authn_dkim *authn_dkim_new(const char *header, size_t len,
    time_t now);
/* Does a line of the header section start a DKIM-Signature field? */
bool is_authn_dkim_signed(const char *header, size_t len);
/* Body bytes as they arrive (after dot-unstuffing). */
void authn_dkim_body(struct authn_dkim *d, const void *data, size_t len);
/* Ends the body, fetches each key through dns and checks each signature
 * (RFC 6376 §6); fills *v. */
void authn_dkim_verify(struct authn_dkim *d, const struct authn_dns *dns,
    struct authn_dkim_verdict *v);
void authn_dkim_free(struct authn_dkim **d);
/* Adds one "dkim=" result per signature to ar (dkim=none for none):
 * header.d, header.s, header.b (RFC 6008), a comment with the reason,
 * the testing flag, and the unsigned tail of an l= signature. */
void authn_dkim_ar_add(struct authn_ar *ar,
    const struct authn_dkim_verdict *v);

/* ---- DKIM canonicalization (RFC 6376 §3.4), signing and verifying ------ */

enum authn_dkim_canon {
	AUTHN_DKIM_SIMPLE,
	AUTHN_DKIM_RELAXED,
};

/* Where canonical bytes go (a hash's update). */
typedef void (*authn_dkim_sink)(void *arg, const void *data, size_t len);

/* The body in steps (§3.4.3 simple, §3.4.4 relaxed). A bare CR or LF
 * ends a line as CRLF does (SMTP DATA and the queue's wire form turn
 * them into CRLF, so signer and verifier see those lines). */
struct authn_dkim_body {
	enum authn_dkim_canon canon;
	authn_dkim_sink sink;
	void *arg;
	uint64_t limit;		/* l=: bytes given to sink at most */
	uint64_t length;	/* canonical bytes of the whole body */
	uint64_t empty_lines;	/* held back: empty lines at the end go */
	bool has_wsp;		/* relaxed: a whitespace run waits */
	bool has_cr;		/* a CR waits for its LF */
	bool has_content;	/* the current line has content */
	size_t buflen;
	char buf[2048];		/* output on its way to sink */
};

/* limit: UINT64_MAX for the whole body. */
void authn_dkim_body_init(struct authn_dkim_body *b, enum authn_dkim_canon c,
    uint64_t limit, authn_dkim_sink sink, void *arg);
void authn_dkim_body_update(struct authn_dkim_body *b, const void *data,
    size_t len);
/* Ends the body: the last line's CRLF, simple's CRLF for an empty body,
 * everything given to sink. b->length is then the canonical length. */
void authn_dkim_body_final(struct authn_dkim_body *b);
/* One header field (name to the end of its last line, that CRLF
 * excluded) in relaxed form, "name:value" without CRLF (§3.4.2); caller
 * frees. The simple form (§3.4.1) is the field unchanged. */
char *authn_dkim_header_relaxed(const char *field, size_t len);

/* ---- DKIM tag lists (RFC 6376 §3.2) ------------------------------------ */

#define AUTHN_DKIM_TAGS_MAX 32		/* tags of one list */
#define AUTHN_DKIM_TAG_NAME_MAX 32	/* bytes of a tag name */

/* A tag, pointing into the parsed text; the value without the white
 * space around it (inner folding white space is kept). */
struct authn_dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Parses a tag-list. Returns the number of tags (at most max), or -1
 * with the error in err: a malformed tag, a duplicate name (§3.2), more
 * than max tags, a control character in a value. */
int authn_dkim_tags_parse(const char *text, size_t len,
    struct authn_dkim_tag *tags, size_t max, char *err, size_t errlen);
/* The tag called name (case-sensitive, §3.2), or NULL. */
const struct authn_dkim_tag *authn_dkim_tag_find(
    const struct authn_dkim_tag *tags, size_t n, const char *name);

/* ---- Public Suffix List and organizational domains -------------------- */

#define AUTHN_DOMAIN_MAX 253		/* a domain name's text, bytes */
#define AUTHN_PSL_FILE_MAX (16 * 1024 * 1024)	/* the list's file */
#define AUTHN_PSL_RULES_MAX 200000	/* rules taken from it */

struct authn_psl;

/* Reads a list in the format of publicsuffix.org (Debian's publicsuffix
 * package: /usr/share/publicsuffix/public_suffix_list.dat). Returns NULL
 * with err set when the file cannot be read, is larger than
 * AUTHN_PSL_FILE_MAX or holds no rule. */
struct authn_psl *authn_psl_load(const char *path, char *err,
    size_t errlen);
/* The same from text in memory (never NULL; maybe without rules). */
struct authn_psl *authn_psl_parse(const char *text, size_t len);
void authn_psl_free(struct authn_psl **p);
size_t authn_psl_rules(const struct authn_psl *p);
/* The organizational domain of domain (RFC 7489 §3.2: its public suffix
 * and one label more; a public suffix is its own), in lower case, into
 * out. p NULL: the implicit rule "*" alone. Returns 0, or -1 when domain
 * is not a domain name or out is too small. */
int authn_psl_org_domain(const struct authn_psl *p, const char *domain,
    char *out, size_t outlen);

/* ---- DMARC (RFC 7489, DMARCbis) --------------------------------------- */

#define AUTHN_DMARC_RECORD_MAX 4096	/* a record's text, bytes */
#define AUTHN_DMARC_TAGS_MAX 64		/* tags of one record */
#define AUTHN_DMARC_URIS_MAX 4		/* rua/ruf URIs kept */
#define AUTHN_DMARC_URI_MAX 255		/* bytes of one kept URI */
#define AUTHN_DMARC_WALK_MAX 8		/* DMARCbis tree walk: queries */
#define AUTHN_DMARC_DKIM_MAX 16		/* DKIM results looked at */

enum authn_dmarc_result {
	AUTHN_DMARC_NONE,
	AUTHN_DMARC_PASS,
	AUTHN_DMARC_FAIL,
	AUTHN_DMARC_TEMPERROR,
	AUTHN_DMARC_PERMERROR,
};

enum authn_dmarc_policy {
	AUTHN_DMARC_POLICY_UNSET,	/* tag absent */
	AUTHN_DMARC_POLICY_NONE,
	AUTHN_DMARC_POLICY_QUARANTINE,
	AUTHN_DMARC_POLICY_REJECT,
};

/* "none", "pass", ... (RFC 8601 §2.7.1); "none", "quarantine",
 * "reject" ("none" for UNSET). */
const char *authn_dmarc_result_name(enum authn_dmarc_result r);
const char *authn_dmarc_policy_name(enum authn_dmarc_policy p);

/* A DMARC record (RFC 7489 §6.3; DMARCbis np, t, psd). */
struct authn_dmarc_record {
	enum authn_dmarc_policy p, sp, np;	/* p is never UNSET */
	unsigned pct;			/* 0..100, default 100 */
	bool is_adkim_strict, is_aspf_strict;
	bool is_testing;		/* t=y */
	char psd;			/* 'y', 'n' or 'u' (default) */
	unsigned long ri;		/* default 86400 */
	char fo[16];			/* default "0" */
	char rf[16];			/* default "afrf" */
	char rua[AUTHN_DMARC_URIS_MAX][AUTHN_DMARC_URI_MAX + 1];
	size_t nrua;
	char ruf[AUTHN_DMARC_URIS_MAX][AUTHN_DMARC_URI_MAX + 1];
	size_t nruf;
};

/* Is text a DMARC record: "v=DMARC1" (exactly, §6.4) as its first tag? */
bool is_authn_dmarc_record(const char *text, size_t len);
/* Parses a record. Tags it does not know are ignored, and so are values
 * that are not valid (the default stands, §6.3); a missing or invalid
 * p= is p=none (DMARCbis). Returns 0, or -1 with err set when text is
 * not a DMARC record or is longer than AUTHN_DMARC_RECORD_MAX. */
int authn_dmarc_record_parse(const char *text, size_t len,
    struct authn_dmarc_record *rec, char *err, size_t errlen);

/* The author domain from the addresses of the From: fields
 * (mime_header_mailboxes(): addrs, NULL-terminated, and nfields; rc its
 * return value). RFC 7489 §6.6.1: exactly one From: field whose
 * addresses all have one domain. */
enum authn_dmarc_from {
	AUTHN_DMARC_FROM_OK,
	AUTHN_DMARC_FROM_ABSENT,	/* no From: field, or no address */
	AUTHN_DMARC_FROM_INVALID,	/* unreadable, or not a domain name */
	AUTHN_DMARC_FROM_AMBIGUOUS,	/* several From: fields, or
					 * addresses of several domains */
};
enum authn_dmarc_from authn_dmarc_from_domain(int rc, char *const *addrs,
    size_t nfields, char *domain_out, size_t domain_len, char *why,
    size_t whylen);

/* One DKIM signature's result as DMARC sees it: its d= and whether it
 * verified. */
struct authn_dmarc_dkim {
	const char *domain;
	bool is_pass;		/* passed and signed the whole body */
	bool is_temperror;	/* its key could not be fetched */
};

/* The DKIM verdict as DMARC reads it: one entry per signature (at most
 * max), d= and whether it passed. Returns the count; out borrows v. */
size_t authn_dmarc_dkim_from(const struct authn_dkim_verdict *v,
    struct authn_dmarc_dkim *out, size_t max);

struct authn_dmarc_request {
	const char *from_domain;	/* the author domain */
	enum authn_spf_result spf;	/* of the MAIL FROM identity */
	const char *spf_domain;		/* MAIL FROM's domain, HELO's for
					 * <>; NULL: none */
	const struct authn_dmarc_dkim *dkim;
	size_t ndkim;
	const struct authn_psl *psl;	/* NULL: the TLD rule only */
	unsigned sample;		/* 0..99: selected when < pct */
};

struct authn_dmarc_outcome {
	enum authn_dmarc_result result;
	char from_domain[AUTHN_DOMAIN_MAX + 1];
	char org_domain[AUTHN_DOMAIN_MAX + 1];	/* by the PSL */
	char policy_domain[AUTHN_DOMAIN_MAX + 1]; /* where the record is */
	bool has_record;
	struct authn_dmarc_record record;
	const char *policy_tag;		/* "p", "sp" or "np": the one that
					 * applies */
	enum authn_dmarc_policy policy;	/* its value */
	/* What the policy asks for this message: policy, one step less
	 * when the message falls outside pct= or t=y (RFC 7489 §6.6.4),
	 * none unless the result is fail. */
	enum authn_dmarc_policy disposition;
	bool is_sampled_out;
	bool is_spf_aligned, is_dkim_aligned;
	char dkim_domain[AUTHN_DOMAIN_MAX + 1];	/* the aligned signature */
	char reason[640];
	unsigned queries;
};

/* DMARC for one message: the policy discovered by the DMARCbis DNS tree
 * walk from the author domain (at most AUTHN_DMARC_WALK_MAX TXT
 * questions, and one A question for np=), SPF and DKIM alignment
 * (relaxed: the same organizational domain by the PSL), the policy and
 * the disposition. */
void authn_dmarc_check(const struct authn_dns *dns,
    const struct authn_dmarc_request *req, struct authn_dmarc_outcome *out);
/* The comment of the Authentication-Results result ("p=reject
 * dis=none"), into out. */
void authn_dmarc_comment(const struct authn_dmarc_outcome *o, char *out,
    size_t outlen);

/* The same check, blocking (postern check dmarc). Returns 0, or -1 with
 * err set when no resolver could be opened. */
int authn_dmarc_check_now(const char *resolver, uint16_t port,
    unsigned timeout, const struct authn_dmarc_request *req,
    struct authn_dmarc_outcome *out, char *err, size_t errlen);

/* ---- Authentication-Results (RFC 8601) --------------------------------- */

struct authn_ar;

/* A header field for authserv_id (our host name; copied). */
struct authn_ar *authn_ar_new(const char *authserv_id);
void authn_ar_free(struct authn_ar **ar);
/* Adds one result: method ("spf"), result ("pass"), a comment or NULL,
 * and a property ("smtp.mailfrom") with its value, or NULL. Values are
 * quoted where RFC 8601 §2.2 needs it. */
void authn_ar_add(struct authn_ar *ar, const char *method,
    const char *result, const char *comment, const char *property,
    const char *value);
/* The same with n properties (RFC 8601 §2.2: "header.d=... header.s=
 * ..."), each value quoted where needed. */
void authn_ar_add_props(struct authn_ar *ar, const char *method,
    const char *result, const char *comment, const char *const *props,
    const char *const *values, size_t n);
/* The field, "Authentication-Results: id;\r\n\tspf=pass ...\r\n", folded
 * at each result (caller frees); "id; none" without results (§2.2). */
char *authn_ar_field(const struct authn_ar *ar);
/* Removes from a header section (CRLF lines, as received) every
 * Authentication-Results field whose authserv-id is authserv_id,
 * ignoring case (RFC 8601 §5: such a field did not come from us).
 * Returns the new length; *removed_out counts the fields. */
size_t authn_ar_strip(char *header, size_t len, const char *authserv_id,
    size_t *removed_out);

/* ---- The server's SPF service ------------------------------------------ */

struct authn;

struct authn_settings {
	const char *resolver;	/* numeric address, or NULL: the system's */
	uint16_t resolver_port;
	unsigned threads;	/* pool threads doing checks */
	const char *psl_file;	/* the Public Suffix List for DMARC, or
				 * NULL: no DMARC (authn_psl() is NULL) */
};

/* Returns NULL with err set. Borrows nothing. */
struct authn *authn_new(const struct authn_settings *s, char *err,
    size_t errlen);
/* Waits for the checks under way. */
void authn_free(struct authn **a);

/* The verdict of both identities. */
struct authn_spf_verdict {
	struct authn_spf_outcome mailfrom;
	struct authn_spf_outcome helo;
};

/* The same check, blocking the calling thread (the admin command
 * `postern check spf`), through resolver:port (NULL: the system's).
 * Returns 0 with *v filled (free both outcomes with
 * authn_spf_outcome_deinit), or -1 with err set. */
int authn_spf_check_now(const char *resolver, uint16_t port,
    const struct authn_spf_request *req, struct authn_spf_verdict *v,
    char *err, size_t errlen);

/* The DKIM check of a whole message (msg, len bytes; bare LF and CR line
 * ends are read as CRLF, as SMTP reads them), blocking the calling
 * thread (`postern check dkim`), keys through resolver:port (NULL: the
 * system's), at most timeout seconds of DNS (0: no limit). Returns 0
 * with *v filled, or -1 with err set. */
int authn_dkim_check_now(const char *resolver, uint16_t port,
    const char *msg, size_t len, time_t now, unsigned timeout,
    struct authn_dkim_verdict *v, char *err, size_t errlen);

/* Verifies d (taken) on the pool, keys fetched within timeout seconds
 * counted from now (then temperror); then done(arg, verdict) on base's
 * thread. Returns 0 and calls done exactly once, later. */
int authn_dkim_submit(struct authn *a, struct authn_dkim *d,
    unsigned timeout, struct event_base *base,
    void (*done)(void *arg, const struct authn_dkim_verdict *v), void *arg);

/* Checks the MAIL FROM and HELO identities of req (copied) on the pool;
 * then done(arg, verdict) on base's thread (the verdict lives until done
 * returns). Returns 0 and calls done exactly once, later. */
int authn_spf_submit(struct authn *a, const struct authn_spf_request *req,
    struct event_base *base,
    void (*done)(void *arg, const struct authn_spf_verdict *v), void *arg);

/* The list loaded by authn_new() (NULL without [dmarc]). */
const struct authn_psl *authn_psl(const struct authn *a);

/* DMARC on the pool: req is copied (its strings and DKIM results too;
 * req->psl is replaced by the service's); timeout as for SPF. Then
 * done(arg, outcome) on base's thread. Returns 0 and calls done exactly
 * once, later. */
int authn_dmarc_submit(struct authn *a, const struct authn_dmarc_request *req,
    unsigned timeout, struct event_base *base,
    void (*done)(void *arg, const struct authn_dmarc_outcome *o), void *arg);

#endif
