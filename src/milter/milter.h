/*
 * milter: the client side of the Sendmail milter protocol (version 6, as
 * Postfix speaks it), so that operators can keep rspamd or ClamAV. One
 * struct milter_chain per SMTP session holds a connection to each milter
 * of the listener ([listener NAME] milters = a,b; [milter NAME]). Each
 * step (MAIL, RCPT, the message) runs on a thread of its own, so that a
 * slow milter delays only its own session, and its verdict is handed to
 * the session's event loop. A session asks for one step at a time and
 * waits for it (net_conn_wait); the chain is never used by two threads
 * at once.
 */
#ifndef POSTERN_MILTER_H
#define POSTERN_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct config_listener;
struct event_base;
struct milter_chain;

/* Who the client is, for CONNECT, HELO and the macros of MAIL. Borrowed
 * for the call. */
struct milter_client {
	const char *hostname;		/* our name: macro j */
	const char *daemon_name;	/* the listener's name */
	const char *addr;		/* numeric */
	uint16_t port;
	const char *name;		/* reverse name, or NULL: "[addr]" */
	const char *helo;		/* or NULL */
	const char *tls_version;	/* or NULL */
	const char *tls_cipher;
	const char *auth_authen;	/* logged-in user, or NULL */
	const char *queue_id;		/* macro i */
};

enum milter_result {
	MILTER_CONTINUE,	/* go on: store the message / take the rcpt */
	MILTER_REJECT,		/* reply (5xx) */
	MILTER_TEMPFAIL,	/* reply (4xx) */
	MILTER_DISCARD,		/* say 250, store nothing */
};

#define MILTER_REPLY_MAX 1024

struct milter_verdict {
	enum milter_result result;
	/* For REJECT and TEMPFAIL: the reply, lines ending in CRLF, the
	 * last one too ("550 5.7.1 Command rejected\r\n"). */
	char reply[MILTER_REPLY_MAX];
	char milter[64];	/* the milter that decided, for the log */
	/* The message step: out_fd holds the changed message (out_len
	 * bytes from offset 0) when is_changed; a quarantine request's
	 * reason when is_quarantined. */
	bool is_changed;
	uint64_t out_len;
	bool is_quarantined;
	char quarantine[256];
	/* Recipients a milter removed (DELRCPT), as it named them, without
	 * angle brackets; owned by the verdict. */
	char **delrcpts;
	size_t ndelrcpts;
};

typedef void (*milter_cb)(void *arg, const struct milter_verdict *v);

/* The chain of l's milters for one session (NULL when l has none).
 * Nothing is connected before the first step. Borrows cfg and l, which
 * outlive the session (net_conn_config). */
struct milter_chain *milter_chain_new(const struct config *cfg,
    const struct config_listener *l, const char *sid);
/* Says QUIT to each milter (without waiting) and closes. Never while a
 * step runs. */
void milter_chain_free(struct milter_chain **chain);

/* MAIL FROM: connects (OPTNEG, CONNECT, HELO) the milters not yet
 * connected, aborts a transaction left open, then sends MAIL with its
 * ESMTP arguments ("SIZE=123"). from is the address without brackets.
 * cb runs once on base's thread, never before this returns. Copies what
 * it needs. */
void milter_mail(struct milter_chain *chain, const struct milter_client *cl,
    const char *from, const char *const *args, size_t nargs,
    struct event_base *base, milter_cb cb, void *arg);
/* RCPT TO: a reject refuses this recipient only. */
void milter_rcpt(struct milter_chain *chain, const char *rcpt,
    const char *const *args, size_t nargs, struct event_base *base,
    milter_cb cb, void *arg);
/* The message, in_len bytes of in_fd from offset 0 (the header section
 * as it will be stored, an empty line, the body; CRLF line ends): DATA,
 * each header, EOH, the body in chunks, EOM, and the changes asked for
 * at EOM applied into out_fd (the caller's empty file) when any. The
 * replaced body may hold at most max_size bytes. The descriptors stay
 * the caller's. */
void milter_message(struct milter_chain *chain, int in_fd, uint64_t in_len,
    int out_fd, uint64_t max_size, struct event_base *base, milter_cb cb,
    void *arg);
/* The transaction ended (RSET, the message done or refused): the next
 * step first sends ABORT to each milter that saw part of it. Does no
 * I/O. */
void milter_abort(struct milter_chain *chain);

#endif
