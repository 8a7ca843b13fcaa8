/*
 * smtp_int: what the files of src/smtp share: the session, its states and
 * the command table (STYLE.md, Sessions, commands, parsers).
 */
#ifndef POSTERN_SMTP_INT_H
#define POSTERN_SMTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "authn/authn.h"
#include "lib/buf.h"
#include "lib/parse.h"
#include "milter/milter.h"
#include "smtp/smtp.h"
#include "store/store.h"

/* ---- DATA decoding (smtp_data.c) ------------------------------------- */

enum smtp_data_state {
	SMTP_DATA_LINE_START,		/* after a real CRLF */
	SMTP_DATA_LINE_START_BARE,	/* after a bare LF or CR */
	SMTP_DATA_MID,
	SMTP_DATA_CR,
	SMTP_DATA_DOT,			/* "." at a real line start */
	SMTP_DATA_DOT_CR,
};

struct smtp_data {
	enum smtp_data_state state;
	uint64_t bare_newlines;		/* bare LF/CR turned into CRLF */
};

void smtp_data_init(struct smtp_data *d);
/* Decodes len bytes of DATA into out, which must hold 2 * len + 4 bytes.
 * Returns PARSE_DONE after CRLF.CRLF, with *used_out the bytes of in it
 * took (the rest follows the message), or PARSE_MORE after taking all. */
enum parse_rc smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    size_t *used_out, char *out, size_t *out_len);

/* Copies len bytes of a BDAT chunk into out, which must hold 2 * len
 * bytes, with every bare CR or LF turned into CRLF; returns the bytes
 * written. After a CR that ends len, an LF starting the next call is
 * dropped. */
size_t smtp_data_bdat_feed(struct smtp_data *d, const char *in, size_t len,
    char *out);
/* After the last chunk; returns the bytes written into out (2 at most;
 * none today: a final CR was written as CRLF when it came). */
size_t smtp_data_bdat_end(struct smtp_data *d, char *out);

/* ---- Addresses and parameters (smtp_address.c) ----------------------- */

#define SMTP_MAX_PARAMS 16

struct smtp_param {
	char *key;		/* uppercase */
	char *value;		/* or NULL */
};

/* "MAIL FROM:<a> K=V ..." and "RCPT TO:<a> ...", after the verb. */
struct smtp_path {
	char *address;		/* "" for the null path <> */
	struct smtp_param params[SMTP_MAX_PARAMS];
	size_t nparams;
	bool is_utf8;		/* the address has non-ASCII characters */
};

/* Parses "FROM:<...> params" (prefix "FROM:" or "TO:"). Returns 0, or -1
 * with a reply (code and text) in err. */
int smtp_path_parse(const char *line, size_t len, const char *prefix,
    struct smtp_path *path_out, char *err, size_t errlen);
void smtp_path_deinit(struct smtp_path *p);
/* The value of parameter key, or NULL; *has_out tells if it was given. */
const char *smtp_path_param(const struct smtp_path *p, const char *key,
    bool *has_out);
/* Checks the argument of EHLO or HELO: no control characters. Returns
 * 0, or -1 with a reply in err. */
int smtp_helo_check(const char *args, size_t len, char *err,
    size_t errlen);
/* The recipient RFC 5321 §4.1.1.3 lets a client name without a domain;
 * smtp_path_parse() returns it as this (lowercase) address. */
#define SMTP_POSTMASTER "postmaster"
/* The domain of an address ("" when none). */
const char *smtp_address_domain(const char *address);
/* Whether value is well formed for the DSN parameter key (RFC 3461 §4:
 * RET, ENVID, NOTIFY, ORCPT; true for any other key). These are relayed
 * to the next hop as given, so only printable ASCII passes. */
bool is_smtp_dsn_param_ok(const char *key, const char *value);

/* ---- Session ---------------------------------------------------------- */

enum smtp_state {
	SMTP_STATE_FRESH = 1 << 0,	/* before EHLO/HELO */
	SMTP_STATE_READY = 1 << 1,	/* greeted, no transaction */
	SMTP_STATE_MAIL = 1 << 2,	/* MAIL accepted */
	SMTP_STATE_RCPT = 1 << 3,	/* a recipient accepted */
	SMTP_STATE_DATA = 1 << 4,	/* reading DATA bytes */
	SMTP_STATE_BDAT = 1 << 5,	/* reading a BDAT chunk */
	SMTP_STATE_AUTH = 1 << 6,	/* in a SASL exchange */
	SMTP_STATE_WAIT = 1 << 7,	/* waiting for store or auth */
};

struct smtp_rcpt {
	char *address;
	int64_t *accounts;	/* local accounts it reaches */
	size_t naccounts;
	char **external;	/* external addresses it reaches */
	size_t nexternal;
	char *dsn;		/* "NOTIFY=... ORCPT=..." or NULL */
};

struct smtp_session {
	struct net_conn *conn;
	struct smtp_ctx *ctx;
	const struct config *cfg;
	char sid[24];
	enum smtp_state state;
	struct line_reader reader;
	bool is_submission;	/* 587/465: authentication required */
	bool is_esmtp;
	char *helo;
	unsigned errors;
	bool has_starttls;	/* STARTTLS began in this input() call */
	/* Authentication. */
	struct auth_exchange auth;	/* AUTH (smtp_cmd_auth.c) */
	bool is_authenticated;
	struct auth_identity id;
	/* The transaction. */
	char *mail_from;	/* "" for <> */
	bool is_smtputf8;
	bool is_8bit;
	uint64_t declared_size;	/* MAIL SIZE=, or 0 */
	char *dsn_envelope;	/* "RET=... ENVID=..." or NULL */
	struct smtp_rcpt *rcpts;
	size_t nrcpts;
	/* The message being received. */
	struct store_delivery *delivery;
	size_t delivery_queued;	/* outside recipients of the submitted one */
	struct smtp_data data;
	struct buf header;	/* the header section, until it ends */
	bool is_header_done;
	/* A header section over the buffer: after the first part is
	 * written, its remaining fields are still read one by one so that
	 * a forged Authentication-Results: cannot hide behind 64 KB of
	 * padding (smtp_cmd_data.c, header_tail()). */
	bool is_header_tail;
	bool is_header_tail_bol;	/* the last byte was a line's end */
	size_t header_tail_start;	/* where the field under way starts */
	enum { HEADER_TAIL_KEEP, HEADER_TAIL_PASS, HEADER_TAIL_DROP }
	    header_tail_mode;	/* for a field over the buffer */
	uint64_t size;		/* bytes received so far */
	uint64_t bdat_left;	/* bytes of the BDAT chunk still to come */
	bool is_bdat_last;
	bool is_bdat_discard;	/* the BDAT was refused: drop its chunk */
	enum smtp_state bdat_return_state;
	bool is_oversize;
	bool is_write_failed;
	/* Authentication-Results of the transaction (SPF, after MAIL), or
	 * NULL: written above Received: (RFC 8601 §5). */
	struct authn_ar *ar;
	/* DKIM (RFC 6376) of the message under way, port 25 without a
	 * login: its signatures, read when the header section ended, and
	 * the body hashed as it comes. A signed message's body waits in
	 * dkim_spool (a file without a name) until the results can go in
	 * the header above it (smtp_cmd_data.c). */
	struct authn_dkim *dkim;
	bool is_dkim_held;
	int dkim_spool;		/* -1: none */
	uint64_t dkim_spooled;
	/* The results, once known (for DMARC and a spam score). */
	bool has_dkim_verdict;
	struct authn_dkim_verdict dkim_verdict;
	/* What SPF said of the MAIL FROM identity (has_spf_result: SPF was
	 * checked), for DMARC: its result and domain (HELO's for <>). */
	bool has_spf_result;
	enum authn_spf_result spf_result;
	char *spf_domain;
	/* DMARC (RFC 7489, smtp_dmarc.c) is to run at the end of the
	 * message; the author domain (§6.6.1) read with the header. A
	 * message held for DKIM (dkim_spool) is held for DMARC too, also
	 * unsigned, so that dmarc= goes into our header above it. */
	bool is_dmarc_pending;
	enum authn_dmarc_from dmarc_from;
	char dmarc_domain[AUTHN_DOMAIN_MAX + 1];
	char dmarc_from_why[128];
	/* The reply that refuses the message at its end, once its header
	 * was read (hops, From: of a logged-in user); "" for none. */
	char header_refusal[256];
	/* Milters of the listener (smtp_milter.c), or NULL. With milters,
	 * the message goes to a spool first (milter_spool, its length)
	 * and to the delivery only once they are done with it. */
	struct milter_chain *milters;
	int milter_spool;
	uint64_t milter_spool_len;
	int milter_out;
	char **milter_mail_args;	/* MAIL's ESMTP "K=V" words */
	size_t nmilter_mail_args;
	bool is_milter_discard;	/* a milter said DISCARD: 250, no store */
};

/* The shape of a command: allowed states, flags, the check that refuses
 * it (sending the reply; returns -1) and the run that trusts it. */
enum smtp_cmd_flag {
	SMTP_CMD_PRE_TLS = 1 << 0,	/* allowed before STARTTLS when the
					 * listener requires it */
};

struct smtp_cmd {
	const char *name;
	unsigned states;
	unsigned flags;
	void (*run)(struct smtp_session *s, const char *args, size_t len);
};

/* Sends one reply line ("250 2.0.0 OK"). */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Counts a client error, slows down and disconnects past the limits. */
void smtp_error(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_set_state(struct smtp_session *s, enum smtp_state to);
/* Forgets the transaction (RSET, after the message). */
void smtp_transaction_reset(struct smtp_session *s);

/* smtp_cmd_mail.c */
/* Is address one the logged-in account may send as (envelope or From:)?
 * Its own, or an alias that delivers to it; case-insensitive. */
bool is_smtp_sender_owned(struct smtp_session *s, const char *address);
void smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len);
/* smtp_cmd_data.c */
void smtp_cmd_data(struct smtp_session *s, const char *args, size_t len);
void smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len);
/* Consumes message bytes from in, from the line reader's offset on; when
 * the message ends, replies (after the store) and leaves DATA/BDAT. */
void smtp_message_input(struct smtp_session *s, struct buf *in);
/* smtp_milter.c */
/* MAIL was accepted by our checks: asks the milters, then answers. */
void smtp_milter_mail(struct smtp_session *s);
/* The last recipient was accepted by our checks: asks the milters,
 * then answers (dropping it when they refuse). args: RCPT's ESMTP
 * words. */
void smtp_milter_rcpt(struct smtp_session *s, const char *const *args,
    size_t nargs);
/* The message is in the spool: the milters see it, then
 * smtp_message_store() takes it (or their refusal is the reply). */
void smtp_milter_message(struct smtp_session *s);
/* Sends a milter's reply (lines ending in CRLF). */
void smtp_milter_reply(struct smtp_session *s, const char *reply);
/* smtp_cmd_data.c: hands the delivery to the store and answers;
 * mailbox: where local recipients get it (NULL: INBOX). */
void smtp_message_store(struct smtp_session *s, const char *mailbox);

/* smtp_cmd_data.c: the message is in and its checks are done: a held
 * header and body (DKIM, DMARC) are written, then the milters or
 * smtp_message_store() take it. */
void smtp_message_release(struct smtp_session *s);
/* smtp_dmarc.c */
/* Reads the author domain from the header section (s->header) and sets
 * is_dmarc_pending when DMARC is to run for this message. */
void smtp_dmarc_header(struct smtp_session *s);
/* The message is in (and DKIM's verdict, if any): DMARC on authn's
 * pool, then the message refused, or released (to Junk for
 * quarantine). */
void smtp_dmarc_start(struct smtp_session *s);

/* smtp_cmd_auth.c */
void smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len);
void smtp_auth_response(struct smtp_session *s, const char *line,
    size_t len);
bool is_smtp_auth_offered(const struct smtp_session *s);
extern const struct auth_exchange_ops smtp_auth_ops;

#endif
